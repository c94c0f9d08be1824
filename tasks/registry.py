"""Tasks by name: `--task FAMILY:ARG` (`babi:2`, `babi:1-3,6`, `babi:all`, ...) -> `TaskData`.

Every task gives the training loop the same thing: train/valid/test batches of its family's type
(`memnet.batches`: each holds `target`, IGNORE_INDEX where nothing is to be predicted, and `task`),
and the `DataSizes` a model is built with.
"""

import sys
from dataclasses import dataclass, field

from memnet.batches import Batch, DataSizes, time_slots
from tasks.babi import BabiDataMissing, load_task, parse_task_list
from tasks.babi_tensors import DEFAULT_MEMORY_SIZE, encode
from tasks.seq2seq_tasks import load_copy, load_reverse, load_sort
from tasks.temporal_order import load_temporal
from tasks.vocab import Vocab


@dataclass
class TaskData:
    name: str  # the spec it was loaded from, e.g. "babi:1"
    splits: dict[str, Batch]  # "train"/"valid"/"test" -> one batch of the family's type holding the whole split
    vocab: Vocab  # input words (and, for QA, answer classes)
    sizes: DataSizes  # what a model takes from the data: vocab_size, num_classes, memory slots, ...
    examples: dict[str, list] = field(default_factory=dict)  # raw examples per split, for inspection
    skipped: list[str] = field(default_factory=list)  # parts that could not be loaded, and why


def load_babi(arg: str, *, data_dir=None, variant: str = "en", memory_size: int = DEFAULT_MEMORY_SIZE,
              vocab: Vocab | None = None, **_) -> TaskData:
    """One or several bAbI tasks; several share one vocabulary (joint training).

    A task whose files are missing is skipped with a message when others remain, so a walk over
    `en-10k` (which may lack task 3's training file) carries on.
    """
    tasks = parse_task_list(arg)
    examples = {"train": [], "valid": [], "test": []}
    skipped = []
    for task in tasks:
        try:
            splits = load_task(data_dir, variant, task)
        except BabiDataMissing as error:
            if len(tasks) == 1:
                raise
            skipped.append(f"task {task}: {error}")
            print(f"skipping bAbI task {task}: {error}", file=sys.stderr)
            continue
        for split, questions in splits.items():
            examples[split].extend(questions)
    if not examples["train"]:
        raise BabiDataMissing(f"none of the bAbI tasks {arg} could be loaded:\n" + "\n".join(skipped))
    vocab = vocab or Vocab.build(examples["train"])  # test words never seen in training count as <unk>
    tensors = {split: encode(questions, vocab, memory_size) for split, questions in examples.items()}
    if vocab.unknown:
        print(f"{sum(vocab.unknown.values())} token(s) outside the training vocabulary were read as <unk>: "
              f"{', '.join(sorted(vocab.unknown)[:10])}", file=sys.stderr)
    train = examples["train"]
    sizes = DataSizes(
        vocab_size=len(vocab), num_classes=len(vocab), memory_size=memory_size, time_slots=time_slots(memory_size),
        # as the official release sizes its memory and position weights from the training data
        memory_slots=min(memory_size, max(len(example.story) for example in train)),
        sentence_size=1 + max(len(words) for example in train for words in [example.question, *example.story]),
    )
    return TaskData(f"babi:{arg}", tensors, vocab, sizes, examples, skipped)


TASKS = {"babi": load_babi, "temporal": load_temporal, "copy": load_copy, "reverse": load_reverse, "sort": load_sort}


def load(spec: str, **options) -> TaskData:
    """Load `FAMILY:ARG`; options a family does not use are ignored."""
    family, _, arg = spec.partition(":")
    if family not in TASKS:
        raise ValueError(f"unknown task family {family!r} in {spec!r}; choose one of {', '.join(sorted(TASKS))}")
    return TASKS[family](arg, **options)
