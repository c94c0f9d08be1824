"""The temporal-order task (Hochreiter & Schmidhuber 1997, experiment 6a; NYU Deep Learning, week 6).

A sequence starts with B and ends with E; two positions t1 < t2 hold X or Y, every other position
a random distractor from {a, b, c, d}. The class is the order of the two relevant symbols:
XX -> Q, XY -> R, YX -> S, YY -> U. Lengths and positions come from the difficulty level
(inclusive ranges; position 0 is B):

    level      length    t1      t2
    easy       7-8       1-2     4-5
    normal     30-40     2-5     20-27
    moderate   60-80     10-20   45-54
    hard       100-110   10-20   50-60     (the 1997 paper's setting)
    nightmare  300-500   10-80   250-290

One raw example and its `SequenceBatch` (memnet.batches; ids from the task's `Vocab`: PAD 0, UNK 1,
B 2, E 3, X 4, Y 5, a 6, b 7, c 8, d 9):

    "BaXcYdE", class R (X then Y)
    input   [2, 6, 4, 8, 5, 9, 3, 0]   (n, L) padded with 0 after the end
    lengths 7                          (n,)
    mask    [T, T, T, T, T, T, T, F]   (n, L) True on real positions
    target  1                          (n,) index into CLASSES = Q, R, S, U
    t1, t2  2, 4                       (n,) where the relevant symbols are
    task    0                          (n,) one task

Spec: `temporal:LEVEL[,train=N][,valid=N][,test=N][,seed=S]`. Train and valid come from `seed`;
the test set comes from a fixed seed of its own, so every run of a level meets the same test set.
"""

from typing import TYPE_CHECKING

import torch

from memnet.batches import DataSizes, SequenceBatch
from tasks.sequences import pad, parse_spec
from tasks.vocab import Vocab

if TYPE_CHECKING:
    from tasks.registry import TaskData

LEVELS = {  # level -> inclusive (low, high) ranges of length, t1, t2 (NYU DL week 6 sequential_tasks.py)
    "easy": ((7, 8), (1, 2), (4, 5)),
    "normal": ((30, 40), (2, 5), (20, 27)),
    "moderate": ((60, 80), (10, 20), (45, 54)),
    "hard": ((100, 110), (10, 20), (50, 60)),
    "nightmare": ((300, 500), (10, 80), (250, 290)),
}
RELEVANT, DISTRACTORS, START, END = "XY", "abcd", "B", "E"
CLASSES = ("Q", "R", "S", "U")  # XX, XY, YX, YY: index = 2 * (first is Y) + (second is Y)
TEST_SEED = 8382  # fixed: the test set does not move with the training seed (the course's seed)
DEFAULTS = {"level": "easy", "train": 2000, "valid": 500, "test": 1000, "seed": 0}


def vocabulary() -> Vocab:
    return Vocab(START + END + RELEVANT + DISTRACTORS)


def sample(level: str, n: int, generator: torch.Generator) -> list[tuple[str, int, int, int]]:
    """`n` examples of `level` as (sequence, class, t1, t2)."""
    if level not in LEVELS:
        raise ValueError(f"unknown temporal-order level {level!r}; choose one of {', '.join(LEVELS)}")
    (length_range, t1_range, t2_range) = LEVELS[level]

    def draw(low_high: tuple[int, int]) -> list[int]:
        return torch.randint(low_high[0], low_high[1] + 1, (n,), generator=generator).tolist()

    lengths, t1s, t2s = draw(length_range), draw(t1_range), draw(t2_range)
    body = torch.randint(0, len(DISTRACTORS), (n, length_range[1]), generator=generator).tolist()
    first, second = (torch.randint(0, 2, (n,), generator=generator).tolist() for _ in range(2))
    examples = []
    for i in range(n):
        chars = [DISTRACTORS[j] for j in body[i][: lengths[i]]]
        chars[0], chars[-1] = START, END
        chars[t1s[i]], chars[t2s[i]] = RELEVANT[first[i]], RELEVANT[second[i]]
        examples.append(("".join(chars), 2 * first[i] + second[i], t1s[i], t2s[i]))
    return examples


def encode(examples: list[tuple[str, int, int, int]], vocab: Vocab) -> SequenceBatch:
    """Examples -> the batch of the module docstring."""
    inputs = pad([vocab.encode(sequence) for sequence, *_ in examples])  # (n, L)
    lengths = torch.tensor([len(sequence) for sequence, *_ in examples])  # (n,)
    return SequenceBatch(
        input=inputs,
        lengths=lengths,
        mask=torch.arange(inputs.shape[1]) < lengths[:, None],  # (n, L)
        t1=torch.tensor([t1 for *_, t1, _ in examples]),
        t2=torch.tensor([t2 for *_, t2 in examples]),
        target=torch.tensor([label for _, label, _, _ in examples]),
        task=torch.zeros(len(examples), dtype=torch.long),
    )


def load_temporal(arg: str, **_) -> "TaskData":
    """`temporal:hard,train=5000,seed=1` -> TaskData; see the module docstring."""
    from tasks.registry import TaskData  # here, not at the top: the registry imports this module
    options = parse_spec("temporal", arg, DEFAULTS, positional="level")
    level = options["level"]
    generator = torch.Generator().manual_seed(options["seed"])
    raw = {
        "train": sample(level, options["train"], generator),
        "valid": sample(level, options["valid"], generator),
        "test": sample(level, options["test"], torch.Generator().manual_seed(TEST_SEED)),
    }
    vocab = vocabulary()
    sizes = DataSizes(vocab_size=len(vocab), num_classes=len(CLASSES))
    return TaskData(f"temporal:{arg}", {split: encode(examples, vocab) for split, examples in raw.items()}, vocab, sizes,
                    {split: [(sequence, CLASSES[label]) for sequence, label, *_ in examples] for split, examples in raw.items()})
