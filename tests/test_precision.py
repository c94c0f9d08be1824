"""bfloat16 autocast (`--precision bfloat16`): the forward's matmuls in bfloat16, everything a run keeps in float32."""

import json
from pathlib import Path

import pytest
import torch

from memnet.loop import logits_of
from memnet.models import build_model
from memnet.population import Member, population_key, train_population
from memnet.spec import resolve
from memnet.train import load_data, train_run

SMALL = {"dim": 8, "hops": 2}


def spec(babi_dir, precision, seed=0):
    return resolve("memn2n", "release", SMALL, {"epochs": 2, "linear_start": 1, "precision": precision, "seed": seed},
                   {"name": "babi:1", "data_dir": str(babi_dir)})


def losses(folder: Path) -> list[float]:
    return [json.loads(line)["train_loss"] for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_bfloat16_logits_are_float32_and_near_but_not_the_float32_ones(babi_dir):
    s = spec(babi_dir, "float32")
    data = load_data(s.task)
    torch.manual_seed(0)
    model = build_model(s.model.name, s.model.config, data.sizes)
    batch = data.splits["train"].select(torch.arange(16))
    full, half = logits_of(model, batch), logits_of(model, batch, "bfloat16")
    assert full.dtype == half.dtype == torch.float32
    assert not torch.equal(full, half)  # autocast took effect: the matmuls rounded to bfloat16
    torch.testing.assert_close(half, full, rtol=0.05, atol=0.05)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_a_bfloat16_member_trains_as_the_bfloat16_run_alone(babi_dir, tmp_path):
    """Members of one precision share a population; a bfloat16 member's losses are its lone run's, to bfloat16
    rounding (the population's vmapped matmuls round in another order), and not the float32 run's."""
    half, full = spec(babi_dir, "bfloat16"), spec(babi_dir, "float32")
    assert population_key(half) != population_key(full)
    train_population([Member(half, tmp_path / "member", load_data(half.task))], device="cpu", compile=False, progress=False)
    train_run(half, tmp_path / "alone", progress=False, device="cpu")
    train_run(full, tmp_path / "full", progress=False, device="cpu")
    assert losses(tmp_path / "member") == pytest.approx(losses(tmp_path / "alone"), rel=1e-2)
    assert losses(tmp_path / "alone") != losses(tmp_path / "full")
    assert json.loads((tmp_path / "alone" / "config.json").read_text())["spec"]["train"]["precision"] == "bfloat16"
