"""The synthetic sequence tasks: determinism per seed, and labels checked by rules written out here."""

import pytest
import torch

from memnet.batches import IGNORE_INDEX, DataSizes
from tasks import registry
from tasks.echo import chunks, echo_stream
from tasks.seq2seq_tasks import BOS, EOS

# The levels table of the NYU Deep Learning course (week 6), written out again rather than imported.
LEVELS = {  # level: (length, t1, t2), inclusive
    "easy": ((7, 8), (1, 2), (4, 5)),
    "normal": ((30, 40), (2, 5), (20, 27)),
    "moderate": ((60, 80), (10, 20), (45, 54)),
    "hard": ((100, 110), (10, 20), (50, 60)),
    "nightmare": ((300, 500), (10, 80), (250, 290)),
}
SMALL = "train=40,valid=10,test=20"


def decode_rows(data, split: str, key: str) -> list[list[str]]:
    """Rows of a tensor as words, padding (0) and ignored positions (-100) dropped."""
    return [data.vocab.decode([i for i in row if i > 0]) for row in getattr(data.splits[split], key).tolist()]


# ---- temporal order ---------------------------------------------------------------------------

@pytest.mark.parametrize("level", list(LEVELS))
def test_temporal_labels_follow_the_rule(level):
    data = registry.load(f"temporal:{level},{SMALL}")
    (length_lo, length_hi), (t1_lo, t1_hi), (t2_lo, t2_hi) = LEVELS[level]
    rule = {("X", "X"): "Q", ("X", "Y"): "R", ("Y", "X"): "S", ("Y", "Y"): "U"}
    for split in ("train", "valid", "test"):
        batch = data.splits[split]
        for i, symbols in enumerate(decode_rows(data, split, "input")):
            assert symbols[0] == "B" and symbols[-1] == "E"
            assert length_lo <= len(symbols) <= length_hi
            relevant = [(position, s) for position, s in enumerate(symbols) if s in "XY"]
            assert len(relevant) == 2, symbols
            (t1, first), (t2, second) = relevant
            assert t1_lo <= t1 <= t1_hi and t2_lo <= t2 <= t2_hi
            assert set(symbols[1:-1]) - {"X", "Y"} <= set("abcd")
            assert "QRSU"[batch.target[i]] == rule[first, second]
            assert (batch.t1[i], batch.t2[i], batch.lengths[i]) == (t1, t2, len(symbols))
            assert batch.mask[i].sum() == len(symbols) and batch.mask[i, : len(symbols)].all()
        assert (batch.task == 0).all()


def test_temporal_is_deterministic_per_seed_with_a_fixed_test_set():
    a, b = registry.load(f"temporal:normal,{SMALL}"), registry.load(f"temporal:normal,{SMALL}")
    c = registry.load(f"temporal:normal,{SMALL},seed=1")
    for split in ("train", "valid", "test"):
        assert all(torch.equal(value, b.splits[split].tensors()[k]) for k, value in a.splits[split].tensors().items())
    assert not torch.equal(a.splits["train"].input, c.splits["train"].input)
    assert torch.equal(a.splits["test"].input, c.splits["test"].input)  # the test set never moves
    assert a.sizes == DataSizes(vocab_size=10, num_classes=4)


def test_temporal_classes_are_balanced_enough():
    counts = torch.bincount(registry.load("temporal:easy,train=2000").splits["train"].target, minlength=4)
    assert counts.min() > 400


@pytest.mark.parametrize("spec, message", [
    ("temporal:impossible", "unknown temporal-order level"),
    ("temporal:easy,size=3", "has no option 'size'"),
    ("temporal:easy,train=many", "bad value 'many' for train"),
    ("temporal:easy,hard", "expected key=value"),
])
def test_temporal_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ValueError, match=message):
        registry.load(spec)


# ---- copy / reverse / sort --------------------------------------------------------------------

RULES = {"copy": lambda s: list(s), "reverse": lambda s: s[::-1], "sort": lambda s: sorted(s, key=int)}


@pytest.mark.parametrize("family", list(RULES))
def test_seq2seq_targets_follow_the_rule(family):
    data = registry.load(f"{family}:train=2-4,test=2-6,symbols=12,size=50,per_length=5")
    for split in ("train", "valid", "test"):
        batch = data.splits[split]
        sources = decode_rows(data, split, "source")
        targets = decode_rows(data, split, "target")
        inputs = decode_rows(data, split, "decoder_input")
        for i, (source, target, given) in enumerate(zip(sources, targets, inputs)):
            assert target == RULES[family](source) + [EOS]
            assert given == [BOS] + RULES[family](source)  # teacher forcing: the target shifted right
            assert batch.length[i] == len(source) == batch.source_mask[i].sum()
            assert (batch.target[i, len(source) + 1 :] == IGNORE_INDEX).all()
            assert all(0 <= int(x) < 12 for x in source)
            if split != "test":
                assert 2 <= len(source) <= 4
    lengths = data.splits["test"].length
    assert torch.equal(torch.bincount(lengths)[2:], torch.full((5,), 5))  # 5 of each test length 2..6


def test_seq2seq_is_deterministic_per_seed():
    a, b, c = (registry.load(f"reverse:size=30,per_length=3{extra}") for extra in ("", "", ",seed=1"))
    assert torch.equal(a.splits["train"].source, b.splits["train"].source)
    assert not torch.equal(a.splits["train"].source, c.splits["train"].source)
    assert torch.equal(a.splits["test"].source, c.splits["test"].source)


def test_seq2seq_bad_range_is_an_error():
    with pytest.raises(ValueError, match="bad value '9-3' for train"):
        registry.load("sort:train=9-3")


# ---- echo ---------------------------------------------------------------------------------------

def test_echo_target_is_the_input_delayed():
    stream = echo_stream(3, 40, 3, torch.Generator().manual_seed(0))
    bits, target = stream["input"].tolist(), stream["target"].tolist()
    for row_bits, row_target in zip(bits, target):
        for i, t in enumerate(row_target):
            assert t == (IGNORE_INDEX if i < 3 else row_bits[i - 3])
    pieces = chunks(stream, 10)
    assert len(pieces) == 4 and torch.equal(torch.cat([p["input"] for p in pieces], 1), stream["input"])
    again = echo_stream(3, 40, 3, torch.Generator().manual_seed(0))
    assert torch.equal(again["input"], stream["input"])
    with pytest.raises(ValueError, match="does not cut into chunks"):
        chunks(stream, 7)


def test_registry_knows_the_families():
    assert {"temporal", "copy", "reverse", "sort"} <= set(registry.TASKS)
