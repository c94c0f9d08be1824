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
    """A line of a task file that does not follow the format; the message names file and line."""

    def __init__(self, path, line_no: int, problem: str, line: str | None = None):
        shown = f": {line!r}" if line is not None else ""
        super().__init__(f"{path}:{line_no}: {problem}{shown}")


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


def parse_file(path: str | Path, task: int = 0) -> list[Example]:
    """Every question of one task file, in file order."""
    path = Path(path)
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        raise BabiDataMissing(f"no task file {path}; " + how_to_get_data(path.parent)) from None
    examples: list[Example] = []
    story: list[tuple[str, ...]] = []  # statements of the current story
    slot_of_id: dict[int, int] = {}  # line id -> index in `story`; questions have no slot
    last_id, story_id = 0, -1
    for line_no, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as error:
            raise BabiFormatError(path, line_no, f"not valid UTF-8 ({error.reason} at byte {error.start})") from None
        if not line.strip():
            continue
        id_text, _, text = line.partition(" ")
        if not id_text.isdigit():
            raise BabiFormatError(path, line_no, "expected a line id (a number) then a space", line)
        line_id = int(id_text)
        if line_id == 1:
            story, slot_of_id, story_id = [], {}, story_id + 1
        elif line_id != last_id + 1:
            raise BabiFormatError(path, line_no, f"expected line id {last_id + 1} (or 1 to start a story), got {line_id}", line)
        last_id = line_id
        if "\t" not in text:
            slot_of_id[line_id] = len(story)
            story.append(tokenize(text))
            continue
        question, answer, *rest = (part.strip() for part in text.split("\t"))
        if not answer:
            raise BabiFormatError(path, line_no, "expected an answer after the question's tab", line)
        supporting = []
        for fact in (rest[0].split() if rest else []):
            if not fact.isdigit():
                raise BabiFormatError(path, line_no, f"supporting fact {fact!r} is not a line id", line)
            if int(fact) not in slot_of_id:
                what = "a question" if int(fact) < line_id else "past the story so far"
                raise BabiFormatError(path, line_no, f"supporting fact {fact} points at {what}, expected a statement id", line)
            supporting.append(slot_of_id[int(fact)])
        examples.append(Example(
            story=tuple(story), question=tokenize(question), answer=answer.lower(),
            supporting=tuple(supporting), task=task, story_id=story_id, source=f"{path}:{line_no}",
        ))
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
            f"task {task} has no {' or '.join(missing)} file qa{task}_*_{missing[0]}.txt in {variant}/: " + how_to_get_data(folder)
        )
    splits = {split: parse_file(path, task) for split, path in files.items()}
    if "valid" not in splits:
        splits["train"], splits["valid"] = split_off_valid(splits["train"])
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
