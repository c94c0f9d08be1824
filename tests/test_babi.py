"""The bAbI format: parsing, splits, supporting facts, vocabulary, tensors, `datasets` export, bad input."""

import json
import string
import subprocess
import sys
from pathlib import Path

import pytest

from memnet.batches import DataSizes, time_slots
from tasks.babi import BabiDataMissing, BabiFormatError, load_task, parse_file, parse_task_list, split_off_valid, tokenize
from tasks.babi_tensors import encode
from tasks.registry import load
from tasks.vocab import UNK, Vocab
from tests.conftest import REAL_BABI

STORY = """\
1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary? \tbathroom\t1
4 Mary got the apple there.
5 Mary took the football there.
6 What is Mary carrying? \tapple,football\t4 5
1 Sandra went to the garden.
2 Where is Sandra? \tgarden\t1
"""


def write(tmp_path, text, name="qa1_single-supporting-fact_train.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_questions_are_not_memories_and_supporting_facts_point_at_story_slots(tmp_path):
    first, second, third = parse_file(write(tmp_path, STORY), task=1)
    assert first.story == (("mary", "moved", "to", "the", "bathroom"), ("john", "went", "to", "the", "hallway"))
    assert first.question == ("where", "is", "mary") and first.answer == "bathroom" and first.supporting == (0,)
    # line 3 was a question: lines 4 and 5 are story slots 2 and 3
    assert len(second.story) == 4 and second.supporting == (2, 3)
    assert second.story[2] == ("mary", "got", "the", "apple", "there")
    assert second.answer == "apple,football"  # one answer class
    # id 1 again starts a new story
    assert third.story == (("sandra", "went", "to", "the", "garden"),) and third.story_id == 1
    assert third.source.endswith(":8")


def test_tokenize_drops_punctuation_of_any_script():
    assert tokenize("Where is Mary?") == ("where", "is", "mary")
    assert tokenize("राम रसोई में गया।") == ("राम", "रसोई", "में", "गया")


@pytest.mark.parametrize("text, problem", [  # more cases, through the CLI: tests/test_faults.py
    ("Mary moved to the bathroom.\n", "expected a line id"),
    ("x Mary moved.\n", "expected a line id"),
    ("1 Mary moved.\n2 Where is Mary?\t\t1\n", "empty answer"),
    ("1 Mary moved.\n2 Where is Mary? kitchen 1\n", "question without its tab-separated answer"),  # not read as a statement
    ("1 Mary moved.\n2 John moved.\n3 Where is Mary ? kitchen 1 2\n", "were the tabs turned into spaces"),
    ("1 Mary moved.\n2 Where is Mary?\n", "no question in the whole file"),  # a tab-less line is a statement
    ("1 Mary moved.\n2 Where is Mary?\tkitchen\t5\n", "past the story"),
    ("1 Mary moved.\n2 Where is Mary?\tkitchen\t1\n3 Where is Mary?\tkitchen\t2\n", "points at a question"),
    ("1 Mary moved.\n2 Where is Mary?\tkitchen\tone\n", "is not a number"),
    ("1 Mary moved.\n3 John moved.\n", "expected 2"),
])
def test_malformed_lines_name_file_and_line(tmp_path, text, problem):
    path = write(tmp_path, text)
    with pytest.raises(BabiFormatError, match=problem) as error:
        parse_file(path)
    last_line = len(text.splitlines())
    assert f"{path}:{last_line}:" in str(error.value)


def test_a_statement_holding_a_question_mark_is_a_statement(tmp_path):
    # the Hindi qa15 files (hn/, hn-10k/) hold about a thousand statements such as `3 Pallavi bhed hai ?.`
    text = "1 Bhedein bhediyon se darti hain.\n2 Pallavi bhed hai ?.\n3 Pallavi kisse darti hai ?\tbhediya\t2 1\n"
    (example,) = parse_file(write(tmp_path, text), task=15)
    assert example.story == (("bhedein", "bhediyon", "se", "darti", "hain"), ("pallavi", "bhed", "hai"))
    assert example.question == ("pallavi", "kisse", "darti", "hai") and example.answer == "bhediya"
    assert example.supporting == (1, 0)


@pytest.mark.parametrize("line", [
    "2 Where is Mary? 3 kitchen",  # no supporting ids at the end
    "2 Is it here? yes 9",  # the id names no earlier statement
    "2 Pallavi bhed hai ? 1.",  # punctuation after the number: not a question's last field
])
def test_only_a_line_ending_in_answer_and_ids_counts_as_lost_tabs(tmp_path, line):
    examples = parse_file(write(tmp_path, f"1 Mary moved.\n{line}\n3 Where is Mary?\tkitchen\t1\n"), task=1)
    assert len(examples[0].story) == 2  # the line is the second statement


def test_lost_tabs_error_names_path_and_line(tmp_path):
    path = write(tmp_path, STORY.replace("Where is Sandra? \tgarden\t1", "Where is Sandra? garden 1"))
    with pytest.raises(BabiFormatError, match=rf"^{path}:8: a question without its tab-separated answer"):
        parse_file(path)


def test_bad_encoding_names_file_and_line(tmp_path):
    path = write(tmp_path, b"1 Mary moved.\n2 Mary \xff\xfe went.\n")
    with pytest.raises(BabiFormatError, match=r":2: bytes that are not UTF-8"):
        parse_file(path)


def test_valid_is_cut_from_train_at_a_story_boundary(babi_dir):
    splits = load_task(babi_dir, "en", 1)
    assert len(splits["train"]) + len(splits["valid"]) == 80 and len(splits["test"]) == 20
    assert len(splits["valid"]) == 8  # 10% of 80, two questions per story
    assert splits["train"][-1].story_id != splits["valid"][0].story_id
    assert splits["valid"] == load_task(babi_dir, "en", 1)["valid"]  # deterministic


def test_split_moves_the_cut_to_the_next_story():
    from tasks.babi import Example

    made = [Example((), (), "a", (), 1, story_id, "f:1") for story_id in (0, 0, 0, 1, 1, 1, 2, 2, 2, 3)]
    train, valid = split_off_valid(made, fraction=0.2)  # wants 2 questions; story 2 would be split
    assert [e.story_id for e in valid] == [3] and len(train) == 9


def test_valid_file_is_used_when_present(babi_dir):
    splits = load_task(babi_dir, "en-valid", 1)
    assert (len(splits["train"]), len(splits["valid"]), len(splits["test"])) == (72, 8, 20)


def test_missing_folder_and_file_say_where_and_how(babi_dir):
    with pytest.raises(BabiDataMissing, match=r"looked in .*en-10k.*memnet data babi --download"):
        load_task(babi_dir, "en-10k", 1)
    with pytest.raises(BabiDataMissing, match=r"task 2 has no train or test file"):
        load_task(babi_dir, "en", 2)


def test_walking_many_tasks_skips_a_missing_one_and_carries_on(babi_dir, capsys):
    data = load("babi:1-2", data_dir=babi_dir, variant="en")
    assert set(data.splits["test"].task.tolist()) == {1}
    assert data.skipped and "task 2" in data.skipped[0]
    assert "skipping bAbI task 2" in capsys.readouterr().err


def test_task_lists():
    assert parse_task_list("1-3,6") == [1, 2, 3, 6]
    assert parse_task_list("all") == list(range(1, 21))
    with pytest.raises(ValueError, match="numbered 1-20"):
        parse_task_list("21")
    with pytest.raises(ValueError, match="cannot read"):
        parse_task_list("one")


def test_vocab_round_trip_and_unknown_words_are_counted(tmp_path):
    examples = parse_file(write(tmp_path, STORY))
    vocab = Vocab.build(examples)
    restored = Vocab.from_state_dict(json.loads(json.dumps(vocab.state_dict())))
    assert restored == vocab and restored.encode(["mary", "garden"]) == vocab.encode(["mary", "garden"])
    assert "apple,football" in vocab.index
    assert vocab.encode(["mary", "zebra", "zebra"])[1:] == [vocab.index[UNK]] * 2
    assert vocab.unknown["zebra"] == 2


def test_tensors_keep_the_most_recent_sentences_and_reindex_support(tmp_path):
    examples = parse_file(write(tmp_path, STORY))
    vocab = Vocab.build(examples)
    batch = encode(examples, vocab, memory_size=3)
    assert batch.story.shape == (3, 3, 5) and batch.query.shape == (3, 4) and len(batch) == 3
    # the second question has 4 statements; memory keeps the last 3, so slots shift by one
    assert batch.memory_mask[1].tolist() == [True, True, True]
    assert batch.supporting[1].tolist() == [1, 2]
    assert vocab.decode(batch.story[1, 1].tolist()) == ["mary", "got", "the", "apple", "there"]
    assert batch.time[1].tolist() == [2, 1, 0]  # recency: the last slot is the newest
    assert batch.memory_mask[2].tolist() == [True, False, False]
    assert batch.target[1].item() == vocab.index["apple,football"]
    assert batch.task.tolist() == [example.task for example in examples]


def test_datasets_export(babi_dir):
    from tasks.hf import to_datasets

    dataset = to_datasets(babi_dir, "en", "1")
    assert {split: len(rows) for split, rows in dataset.items()} == {"train": 72, "valid": 8, "test": 20}
    row = dataset["test"][0]
    assert set(row) == {"story", "question", "answer", "supporting", "task"} and row["task"] == 1
    assert all(0 <= fact < len(row["story"]) for fact in row["supporting"])
    assert row["answer"] in {"kitchen", "garden", "office", "hallway"}


def test_stats_command_json(babi_dir):
    result = subprocess.run([sys.executable, "-m", "memnet.cli", "data", "babi", "--data-dir", str(babi_dir), "--variant", "en",
                             "--stats", "--json", "--tasks", "1-2"], capture_output=True, text=True, check=True)
    rows = json.loads(result.stdout)
    assert {(row["task"], row["split"]): row["questions"] for row in rows} == {(1, "train"): 72, (1, "valid"): 8, (1, "test"): 20}
    assert "task 2" in result.stderr  # missing, said, and the others still reported


# The official archive's other variants, in its format, written for each test: hn/ holds Hindi, romanised and in
# Devanagari, with statements such as `2 Pallavi bhed hai ?.` and a space before a question's `?`; shuffled/ holds
# task-1 stories with every letter swapped by one fixed substitution (nonsense words and answers)
HINDI_QA15 = {
    "train": ["1 Bhediye chuhon se darte hain.", "2 Pallavi bhed hai ?.", "3 Billiyan bhedon se darti hain.",
              "4 Bhedein bhediyon se darti hain.", "5 Pallavi kisse darti hai ?\tbhediya\t2 4", "6 Chuhe billiyon se darte hain.",
              "7 Sita chuha hai ?.", "8 Sita kisse darti hai ?\tbilli\t7 6",
              "1 भेड़ें भेड़ियों से डरती हैं।", "2 पल्लवी भेड़ है ?.", "3 पल्लवी किससे डरती है ?\tभेड़िया\t2 1",
              "4 चूहे बिल्लियों से डरते हैं।", "5 सीता चूहा है ?.", "6 सीता किससे डरती है ?\tबिल्ली\t5 4",
              "1 Billiyan kutton se darti hain.", "2 Mohan billi hai ?.", "3 Mohan kisse darta hai ?\tkutta\t2 1",
              "1 Kutte bhediyon se darte hain.", "2 Raju kutta hai ?.", "3 Raju kisse darta hai ?\tbhediya\t2 1"],
    "test": ["1 Bhedein bhediyon se darti hain.", "2 Pallavi bhed hai ?.", "3 Chuhe billiyon se darte hain.",
             "4 Pallavi kisse darti hai ?\tbhediya\t2 1"],
}
ENGLISH_QA1 = {
    "train": ["1 Mary moved to the bathroom.", "2 John went to the hallway.", "3 Where is Mary? \tbathroom\t1",
              "4 Daniel went back to the hallway.", "5 Sandra moved to the garden.", "6 Where is Daniel? \thallway\t4",
              "1 Sandra travelled to the office.", "2 John journeyed to the garden.", "3 Where is Sandra? \toffice\t1",
              "4 Mary went to the kitchen.", "5 Daniel moved to the office.", "6 Where is Mary? \tkitchen\t4",
              "1 John went to the kitchen.", "2 Mary travelled to the hallway.", "3 Where is John? \tkitchen\t1",
              "1 Sandra went back to the bathroom.", "2 John moved to the office.", "3 Where is John? \toffice\t2"],
    "test": ["1 John travelled to the hallway.", "2 Mary journeyed to the bathroom.", "3 Where is John? \thallway\t1"],
}
SHUFFLE = str.maketrans(string.ascii_lowercase + string.ascii_uppercase,
                        "qwertyuiopasdfghjklzxcvbnm" + "QWERTYUIOPASDFGHJKLZXCVBNM")


@pytest.fixture
def archive_quirks(tmp_path) -> Path:
    """A data dir with hn/qa15 and shuffled/qa1 (train and test files), as the official archive lays them out."""
    root = tmp_path / "archive"
    for variant, name, lines in [("hn", "qa15_basic-deduction", HINDI_QA15),
                                 ("shuffled", "qa1_single-supporting-fact",
                                  {split: [line.translate(SHUFFLE) for line in text] for split, text in ENGLISH_QA1.items()})]:
        (root / variant).mkdir(parents=True)
        for split, text in lines.items():
            (root / variant / f"{name}_{split}.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    return root


@pytest.mark.parametrize("variant, task, answers", [("hn", 15, {"bhediya", "billi", "kutta", "भेड़िया", "बिल्ली"}),
                                                     ("shuffled", 1, {"iqssvqn", "wqzikggd", "gyyoet", "aozeitf"})])
def test_stats_command_reads_the_archives_other_variants(variant, task, answers, archive_quirks):
    result = subprocess.run([sys.executable, "-m", "memnet.cli", "data", "babi", "--data-dir", str(archive_quirks), "--variant",
                             variant, "--stats", "--json", "--tasks", str(task)], capture_output=True, text=True, check=True)
    rows = json.loads(result.stdout)
    assert {row["split"]: row["questions"] for row in rows} == {"train": 5, "valid": 1, "test": 1}
    splits = load_task(archive_quirks, variant, task)
    assert {example.answer for split in splits.values() for example in split} == answers
    assert all(example.story for split in splits.values() for example in split)


@pytest.mark.skipif(not (REAL_BABI / "en").is_dir(), reason=f"real bAbI data not found at {REAL_BABI}")
def test_real_data_has_1000_questions_per_split():
    for task in (1, 3, 8, 19):
        splits = load_task(REAL_BABI, "en", task)
        assert len(splits["train"]) + len(splits["valid"]) == 1000 and len(splits["test"]) == 1000
        for example in splits["test"][:200]:
            assert all(0 <= fact < len(example.story) for fact in example.supporting)


def test_memory_capacity_and_sentence_width_come_from_the_training_stories(babi_dir):
    # fixture stories: up to 4 statements of 5 words ("mary went to the kitchen"), questions of 3
    data = load("babi:1", data_dir=babi_dir)
    assert data.sizes == DataSizes(vocab_size=len(data.vocab), num_classes=len(data.vocab), memory_size=50, memory_slots=4,
                                   sentence_size=6, time_slots=55)  # 50 recencies + 10% room for noise gaps
    assert load("babi:1", data_dir=babi_dir, memory_size=3).sizes.memory_slots == 3
    assert time_slots(3) == 4
