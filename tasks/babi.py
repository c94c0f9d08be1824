"""The Facebook bAbI tasks v1.2 (Weston et al. 2015): the file format, its parser and the splits.

A task file holds numbered lines; the numbering restarts at 1 with every new story, and a
question line carries `question<TAB>answer<TAB>supporting ids`:

    1 Mary moved to the bathroom.
    2 John went to the hallway.
    3 Where is Mary? \tbathroom\t1

becomes one `Example` per question. Its memory is the statements before it (questions are not
memories), and its supporting facts are re-indexed to positions in that list:

    Example(story=(('mary', 'moved', 'to', 'the', 'bathroom'), ('john', 'went', 'to', 'the', 'hallway')),
            question=('where', 'is', 'mary'), answer='bathroom', supporting=(0,), task=1, ...)

A multi-word answer (`apple,football` in task 8, `n,w` in task 19) stays one answer class, as in
the paper. Every folder of the official archive is read the same way: `en`, `en-10k`, the
`-valid` folders (files `qaN_train.txt`, `qaN_valid.txt`, `qaN_test.txt`) and the other
languages (`hn`, `shuffled`), whatever their script.
"""

import codecs
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from tasks.paths import how_to_get_data, resolve_data_dir

SPLITS = ("train", "valid", "test")
TASK_IDS = tuple(range(1, 21))
VALID_FRACTION = 0.1  # the paper holds out 10% of train as validation (Sukhbaatar et al. 2015, sec. 4.2)
FILE_PATTERN = re.compile(r"^qa(\d+)_(?:(.+)_)?(train|valid|test)\.txt$")


class BabiFormatError(ValueError):
    """Bad input in a task file, one line for the user: `PATH:LINE: what is wrong, what was expected`."""

    def __init__(self, path, line_no: int | None, problem: str, line: str | None = None):
        where = f"{path}:{line_no}" if line_no else str(path)
        if line is not None and len(line) > 100:
            line = line[:100] + "..."
        shown = f"; the line reads {line!r}" if line is not None else ""
        super().__init__(f"{where}: {problem}{shown}")


class BabiDataMissing(FileNotFoundError):
    """A variant folder or task file that is not where we looked."""


@dataclass(frozen=True)
class Example:
    """One question with the story it is asked about."""

    story: tuple[tuple[str, ...], ...]  # tokenised statements before the question, oldest first
    question: tuple[str, ...]  # tokenised question
    answer: str  # one answer class, lower-cased ("apple,football" stays whole)
    supporting: tuple[int, ...]  # indices into `story` of the supporting facts
    task: int  # bAbI task number 1-20
    story_id: int  # running number of the story within its file (splits cut between stories)
    source: str  # "file:line" of the question, for messages and inspection


def tokenize(text: str) -> tuple[str, ...]:
    """Lower-cased words with punctuation (any script's) dropped."""
    words = ("".join(ch for ch in word if not unicodedata.category(ch).startswith("P")) for word in text.lower().split())
    return tuple(word for word in words if word)


QUESTION_FORMAT = "'ID question?<TAB>answer<TAB>supporting ids'"  # quoted in the messages
# what is left of a question line whose tabs became spaces: the question mark (ASCII or full-width), then one
# answer word and the supporting ids, at the end of the line (`Where is Mary? bathroom 1`, `... ? bathroom 1 2`)
LOST_TABS = re.compile(r"[?\uff1f]\s*(?P<answer>[^\s?\uff1f]+)(?P<ids>(?:\s+\d+)+)$")


def lost_tabs(text: str, statement_ids) -> bool:
    """Whether a line without a tab is surely a question whose tabs became spaces: it ends in a question mark,
    an answer word and ids that all name earlier statements. A statement may hold a question mark (the Hindi
    qa15 files hold about a thousand, `3 Pallavi bhed hai ?.`), so a question mark alone proves nothing."""
    match = LOST_TABS.search(text)
    return bool(match) and all(int(fact) in statement_ids for fact in match["ids"].split())



def parse_file(path: str | Path, task: int = 0) -> list[Example]:
    """Every question of one task file, in file order; BabiFormatError names the file and line of bad input.

    A line is a question when it holds a tab, as in the official readers; any other line is a statement,
    whatever its punctuation. Accepted as a person's editor may leave them: CRLF line endings, a UTF-8
    byte-order mark, blank lines and trailing spaces. Refused: anything that would change what the file
    means, such as a question whose tabs became spaces (it would be read as a statement; `lost_tabs`)
    or a question line cut short (its answer would become a class of its own).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BabiDataMissing(f"no task file {path}; " + how_to_get_data(path.parent)) from None
    data = data.removeprefix(codecs.BOM_UTF8)
    if not data.strip():
        raise BabiFormatError(path, 1, "the file is empty, expected bAbI lines such as '1 Mary moved to the bathroom.'")
    examples: list[Example] = []
    story: list[tuple[str, ...]] = []  # statements of the current story
    slot_of_id: dict[int, int] = {}  # line id -> index in `story`; questions have no slot
    last_id, story_id, last_question = 0, -1, 0  # last_question: line number of the latest question
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8").rstrip()  # the CR of CRLF and trailing spaces go
        except UnicodeDecodeError as error:
            raise BabiFormatError(path, line_no, f"bytes that are not UTF-8 ({error.reason} at byte {error.start} of the line), "
                                                 "expected UTF-8 text: save the file as UTF-8") from None
        if not line:
            continue
        last_line_no = line_no
        id_text, _, text = line.partition(" ")
        if not id_text.isdecimal():  # what int() reads, in any script
            raise BabiFormatError(path, line_no, f"line id {id_text!r} is not a number, expected a line id (1, 2, ...), "
                                                 "a space, then the sentence", line)
        line_id = int(id_text)
        if line_id == 1:
            story, slot_of_id, story_id = [], {}, story_id + 1
        elif line_id != last_id + 1:
            expected = "1 (a file starts with a story)" if last_id == 0 else f"{last_id + 1} (or 1 to start a new story)"
            raise BabiFormatError(path, line_no, f"line id {line_id} is out of order, expected {expected}", line)
        last_id = line_id
        if not text.strip():
            raise BabiFormatError(path, line_no, "nothing after the line id, expected a sentence or a question", line)
        if "\t" not in text:  # a statement, as the official readers tell a question by its tab alone
            if lost_tabs(text, slot_of_id):
                raise BabiFormatError(path, line_no, "a question without its tab-separated answer and supporting ids "
                                                     f"(were the tabs turned into spaces?), expected {QUESTION_FORMAT}", line)
            slot_of_id[line_id] = len(story)
            story.append(tokenize(text))
            continue
        fields = [field.strip() for field in text.split("\t")]
        question, answer = fields[0], fields[1]
        if not tokenize(question):
            raise BabiFormatError(path, line_no, f"the question before the tab has no words, expected {QUESTION_FORMAT}", line)
        if not answer:
            raise BabiFormatError(path, line_no, f"empty answer after the question's tab, expected {QUESTION_FORMAT}", line)
        if len(fields) < 3 or not fields[2]:
            raise BabiFormatError(path, line_no, f"no supporting ids after the answer {answer!r} (is the line cut short?), "
                                                 f"expected {QUESTION_FORMAT}", line)
        if len(fields) > 3:
            raise BabiFormatError(path, line_no, f"{len(fields)} tab-separated fields, expected 3: {QUESTION_FORMAT}", line)
        supporting = []
        for fact in fields[2].split():
            if not fact.isdecimal():
                raise BabiFormatError(path, line_no, f"supporting id {fact!r} is not a number, expected the ids of "
                                                     "statements before this line, separated by spaces", line)
            if int(fact) not in slot_of_id:
                what = ("past the story so far" if int(fact) >= line_id else "at a question" if int(fact) >= 1
                        else "at no line")
                raise BabiFormatError(path, line_no, f"supporting id {fact} points {what}, expected the id of a statement "
                                                     f"before line id {line_id} of this story", line)
            supporting.append(slot_of_id[int(fact)])
        last_question = line_no
        examples.append(Example(
            story=tuple(story), question=tokenize(question), answer=answer.lower(),
            supporting=tuple(supporting), task=task, story_id=story_id, source=f"{path}:{line_no}",
        ))
    if last_id in slot_of_id:  # the file ends with a statement: no question follows it
        after = f"after line {last_question}" if last_question else "in the whole file"
        raise BabiFormatError(path, last_line_no, f"no question {after}, expected the file to end with a question line "
                                             "(is the file cut short?)")
    return examples


def task_files(data_dir: str | Path | None, variant: str) -> dict[int, dict[str, Path]]:
    """The files of a variant folder: {task: {split: path}} for whatever is present."""
    folder = resolve_data_dir(data_dir) / variant
    if not folder.is_dir():
        raise BabiDataMissing(f"no bAbI folder {variant!r}: " + how_to_get_data(folder))
    found: dict[int, dict[str, Path]] = {}
    for path in sorted(folder.iterdir()):
        match = FILE_PATTERN.match(path.name)
        if match:
            found.setdefault(int(match[1]), {})[match[3]] = path
    return found


def task_name(files: dict[str, Path]) -> str:
    """The task's name from its file names (`qa2_two-supporting-facts_train.txt`), if they carry one."""
    for path in files.values():
        match = FILE_PATTERN.match(path.name)
        if match and match[2]:
            return match[2]
    return ""


def load_task(data_dir: str | Path | None, variant: str, task: int) -> dict[str, list[Example]]:
    """Train, valid and test questions of one task; valid is cut from train when the folder has none."""
    if task not in TASK_IDS:
        raise ValueError(f"bAbI task {task} does not exist; tasks are numbered 1-20")
    files = task_files(data_dir, variant).get(task, {})
    missing = [split for split in ("train", "test") if split not in files]
    if missing:
        folder = resolve_data_dir(data_dir) / variant
        raise BabiDataMissing(
            f"{folder / f'qa{task}_*_{missing[0]}.txt'}: no such file; task {task} has no {' or '.join(missing)} file "
            f"in {variant}/, expected qa{task}_<name>_train.txt and qa{task}_<name>_test.txt: " + how_to_get_data(folder)
        )
    splits = {split: parse_file(path, task) for split, path in files.items()}
    if "valid" not in splits:
        splits["train"], splits["valid"] = split_off_valid(splits["train"])
        if not splits["train"] or not splits["valid"]:
            stories = len({example.story_id for example in splits["train"] + splits["valid"]})
            raise BabiFormatError(
                files["train"], None,
                f"too small to hold out a validation split: the last {VALID_FRACTION:.0%} of its "
                f"{len(splits['train']) + len(splits['valid'])} question(s) in {stories} story(ies), cut between stories, "
                f"leaves {len(splits['train'])} to train on and {len(splits['valid'])} to validate on; expected more "
                f"stories, or a validation file qa{task}_<name>_valid.txt beside it")
    return {split: splits[split] for split in SPLITS}


def split_off_valid(train: list[Example], fraction: float = VALID_FRACTION) -> tuple[list[Example], list[Example]]:
    """Move the last stories of train, holding `fraction` of its questions, to valid.

    Cutting between stories keeps one story's questions (which share sentences) in one split.
    """
    wanted = round(fraction * len(train))
    cut = len(train) - wanted
    while 0 < cut < len(train) and train[cut].story_id == train[cut - 1].story_id:
        cut += 1  # move the cut forward to the next story boundary
    return train[:cut], train[cut:]


def parse_task_list(spec: str) -> list[int]:
    """'all', '2', '1-3,6' -> task numbers, checked against 1-20."""
    if spec == "all":
        return list(TASK_IDS)
    tasks: list[int] = []
    for part in spec.split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ValueError(f"cannot read bAbI task list {spec!r}: use 'all', a number, or ranges like '1-3,6'")
        for task in range(int(low), int(high or low) + 1):
            if task not in TASK_IDS:
                raise ValueError(f"bAbI task {task} does not exist; tasks are numbered 1-20")
            if task not in tasks:
                tasks.append(task)
    return tasks
