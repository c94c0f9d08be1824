"""copy, reverse, sort: sequence-to-sequence tasks for the encoder-decoder (`memnet.models.seq2seq`).

The source is a string of random symbols ("0".."9" by default); the target is the same string
(copy), read backwards (reverse) or in ascending order (sort). The decoder reads BOS and then the
target, and must predict the target and then EOS. One raw example of `reverse` and its
`Seq2SeqBatch` (memnet.batches; ids from the task's `Vocab`: PAD 0, UNK 1, "0".."9" 2..11,
<bos> 12, <eos> 13):

    source "3 1 4" -> target "4 1 3"
    source         [5, 3, 6, 0]           (n, s) padded with 0
    source_mask    [T, T, T, F]           (n, s) True on real symbols
    decoder_input  [12, 6, 3, 5, 0]       (n, t) BOS, then the target (teacher forcing)
    target         [6, 3, 5, 13, -100]    (n, t) the target, then EOS; -100 (IGNORE_INDEX) on padding
    length         3                      (n,) source length, for accuracy by length
    task           0                      (n,) one task

Spec: `reverse[:train=5-10][,test=5-20][,symbols=10][,size=10000][,per_length=100][,seed=0]`.
Train (`size` examples) and valid (`size // 10`) draw lengths uniformly from `train`; test holds
`per_length` examples of every length in `test` (so lengths beyond training can be scored
separately), drawn from a fixed seed so that every run meets the same test set.
"""

from typing import TYPE_CHECKING

import torch

from memnet.batches import IGNORE_INDEX, DataSizes, Seq2SeqBatch
from tasks.sequences import pad, parse_spec
from tasks.vocab import Vocab

if TYPE_CHECKING:
    from tasks.registry import TaskData

BOS, EOS = "<bos>", "<eos>"
TRANSFORMS = {  # family -> what the target is, given the source as a list of symbol numbers
    "copy": lambda source: list(source),
    "reverse": lambda source: source[::-1],
    "sort": sorted,
}
TEST_SEED = 1234  # fixed: the test set does not move with the training seed
DEFAULTS = {"train": (5, 10), "test": (5, 20), "symbols": 10, "size": 10000, "per_length": 100, "seed": 0}


def vocabulary(symbols: int) -> Vocab:
    return Vocab([str(i) for i in range(symbols)] + [BOS, EOS])


def sample(lengths: list[int], symbols: int, generator: torch.Generator) -> list[list[int]]:
    """One random source (symbol numbers 0..symbols-1) of each length in `lengths`."""
    return [torch.randint(0, symbols, (n,), generator=generator).tolist() for n in lengths]


def encode(family: str, sources: list[list[int]], vocab: Vocab) -> Seq2SeqBatch:
    """Sources -> the batch of the module docstring."""
    source_ids = [vocab.encode(str(x) for x in source) for source in sources]
    target_ids = [vocab.encode(str(x) for x in TRANSFORMS[family](source)) for source in sources]
    source = pad(source_ids)  # (n, s)
    lengths = torch.tensor([len(ids) for ids in source_ids])  # (n,)
    return Seq2SeqBatch(
        source=source,
        source_mask=torch.arange(source.shape[1]) < lengths[:, None],  # (n, s)
        decoder_input=pad([[vocab.id(BOS)] + ids for ids in target_ids]),  # (n, t)
        length=lengths,
        target=pad([ids + [vocab.id(EOS)] for ids in target_ids], fill=IGNORE_INDEX),  # (n, t)
        task=torch.zeros(len(sources), dtype=torch.long),
    )


def load_seq2seq(family: str, arg: str) -> "TaskData":
    """`reverse:train=5-10,test=5-20` -> TaskData; see the module docstring."""
    from tasks.registry import TaskData  # here, not at the top: the registry imports this module

    options = parse_spec(family, arg, DEFAULTS)
    if not 1 <= options["symbols"] <= 1000:
        raise ValueError(f"symbols must be 1-1000, got {options['symbols']} in {family}:{arg}")
    generator = torch.Generator().manual_seed(options["seed"])

    def train_lengths(n: int) -> list[int]:
        low, high = options["train"]
        return torch.randint(low, high + 1, (n,), generator=generator).tolist()

    low, high = options["test"]
    test_lengths = [n for n in range(low, high + 1) for _ in range(options["per_length"])]
    raw = {
        "train": sample(train_lengths(options["size"]), options["symbols"], generator),
        "valid": sample(train_lengths(max(1, options["size"] // 10)), options["symbols"], generator),
        "test": sample(test_lengths, options["symbols"], torch.Generator().manual_seed(TEST_SEED)),
    }
    vocab = vocabulary(options["symbols"])
    sizes = DataSizes(vocab_size=len(vocab), num_classes=len(vocab))
    return TaskData(f"{family}:{arg}" if arg else family,
                    {split: encode(family, sources, vocab) for split, sources in raw.items()}, vocab, sizes,
                    {split: [(source, TRANSFORMS[family](source)) for source in sources] for split, sources in raw.items()})


def load_copy(arg: str = "", **_) -> "TaskData":
    return load_seq2seq("copy", arg)


def load_reverse(arg: str = "", **_) -> "TaskData":
    return load_seq2seq("reverse", arg)


def load_sort(arg: str = "", **_) -> "TaskData":
    return load_seq2seq("sort", arg)
