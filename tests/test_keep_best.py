"""Keeping the best epoch by validation (`keep="best-valid"`) and stopping early (`patience`), alone and in populations."""

import dataclasses
import json
import math

import pytest
import torch

from memnet.loop import end_epoch, total_epochs
from memnet.population import Member, train_population
from memnet.spec import resolve
from memnet.train import load_data, train_run
from tests.test_population import (assert_members_are_alone_runs, interrupt_population, metrics, resume_together_and_alone, spec,
                                   write_other_task)


def summary(folder):
    return json.loads((folder / "summary.json").read_text())


def best_line(lines: list[dict]) -> dict:
    return min(lines, key=lambda line: (line["valid_error"], line["valid_loss"]))


def test_the_best_epoch_is_the_lowest_validation_error_then_loss_and_patience_counts_from_it():
    config = resolve("memn2n", None, {}, {"epochs": 20, "patience": 2}, {"name": "babi:1"}).train
    state = {"epoch": 0, "main_from": 0, "seconds": 0.0}
    seen = [(0.5, 1.0), (0.4, 2.0), (0.4, 1.5), (0.4, 1.6), (0.45, 0.1)]  # (error, loss) per epoch
    improved = [end_epoch(config, state, "softmax", loss, error, 1.0) for error, loss in seen]
    assert improved == [True, True, True, False, False]  # a tie on error goes to the lower loss
    assert state["best_valid"] == {"error": 0.4, "loss": 1.5, "epoch": 2}
    assert state["stopped_at"] == 5 and total_epochs(config, state) == 5  # 2 epochs past epoch 2 without a new best


def test_linear_start_epochs_are_never_the_best_and_patience_counts_from_the_main_schedule():
    config = resolve("memn2n", None, {}, {"epochs": 20, "patience": 2, "linear_start": 3}, {"name": "babi:1"}).train
    state = {"epoch": 0, "main_from": None, "best_linear_loss": math.inf, "seconds": 0.0}
    for _ in range(3):  # linear start: low validation error, but a model without its softmax
        assert not end_epoch(config, state, "linear", 0.1, 0.01, 1.0)
    assert state["main_from"] == 3 and state["best_valid"]["epoch"] == -1
    assert end_epoch(config, state, "softmax", 1.0, 0.5, 1.0)  # the first main epoch is the first best
    end_epoch(config, state, "softmax", 1.0, 0.6, 1.0)
    assert "stopped_at" not in state
    end_epoch(config, state, "softmax", 1.0, 0.6, 1.0)
    assert state["stopped_at"] == 6  # 2 epochs past epoch 3 without a new best


def test_without_patience_a_run_trains_every_epoch():
    config = resolve("memn2n", None, {}, {"epochs": 4}, {"name": "babi:1"}).train
    state = {"epoch": 0, "main_from": 0, "seconds": 0.0}
    for error in (0.1, 0.2, 0.3, 0.4):
        end_epoch(config, state, "softmax", 1.0, error, 1.0)
    assert "stopped_at" not in state and total_epochs(config, state) == 4 and state["best_valid"]["epoch"] == 0


def test_a_run_that_keeps_its_best_epoch_is_measured_there(babi_dir, tmp_path):
    # lr high enough that validation error goes up and down: the best epoch is not the last
    run = resolve("memn2n", None, {"dim": 8, "hops": 2}, {"epochs": 12, "lr": 0.2, "keep": "best-valid"},
                  {"name": "babi:1", "data_dir": str(babi_dir)})
    train_run(run, tmp_path / "best", progress=False, device="cpu")
    train_run(dataclasses.replace(run, train=dataclasses.replace(run.train, keep="last")), tmp_path / "last", progress=False, device="cpu")
    lines, best = metrics(tmp_path / "best"), best_line(metrics(tmp_path / "best"))
    assert best["epoch"] != lines[-1]["epoch"]  # the case under test
    assert summary(tmp_path / "best")["measured_epoch"] == best["epoch"]
    assert summary(tmp_path / "best")["valid_error"]["all"] == pytest.approx(100 * best["valid_error"], abs=0.01)
    assert summary(tmp_path / "last")["valid_error"]["all"] == pytest.approx(100 * lines[-1]["valid_error"], abs=0.01)
    assert "measured_epoch" not in summary(tmp_path / "last")


def test_a_run_stops_once_patience_runs_out(babi_dir, tmp_path):
    run = resolve("memn2n", None, {"dim": 8, "hops": 2}, {"epochs": 60, "lr": 0.2, "patience": 3, "keep": "best-valid"},
                  {"name": "babi:1", "data_dir": str(babi_dir)})
    train_run(run, tmp_path / "run", progress=False, device="cpu")
    lines, best = metrics(tmp_path / "run"), best_line(metrics(tmp_path / "run"))
    record = summary(tmp_path / "run")
    assert record["stopped_early"] and record["epochs"] == len(lines) < 60
    assert lines[-1]["epoch"] == best["epoch"] + 3  # 3 epochs without a new best after it
    assert not math.isnan(record["test_error"]["all"])


def test_population_members_that_keep_their_best_epoch_and_stop_early_match_alone_runs(babi_dir, tmp_path):
    write_other_task(babi_dir / "en", 2, 30, seed=9)
    specs = [spec(babi_dir, task, seed, epochs=30, keep="best-valid", patience=2) for task, seed in [(1, 0), (2, 1), (1, 2)]]
    assert_members_are_alone_runs(specs, tmp_path)
    ends = {summary(tmp_path / f"member-{k}")["epochs"] for k in range(3)}
    assert min(ends) < 31  # at least one member stopped early (31: linear start's epoch + 30)


def test_an_interrupted_population_keeping_its_best_epochs_resumes_to_the_same_records(babi_dir, tmp_path, monkeypatch):
    specs = [spec(babi_dir, 1, seed, epochs=8, keep="best-valid", patience=3) for seed in (0, 1)]
    whole = [Member(s, tmp_path / f"whole-{k}", load_data(s.task)) for k, s in enumerate(specs)]
    train_population(whole, device="cpu", compile=False, progress=False)
    interrupt_population(specs, tmp_path, monkeypatch, stop_at_call=9)  # the first member's fifth epoch
    saved = torch.load(tmp_path / "cut-0" / "checkpoint.pt", weights_only=True)["state"]
    assert saved["epoch"] == 4 and "best_weights" in saved  # four epochs of both checkpointed, a best among them
    resume_together_and_alone(specs, tmp_path)  # the records, measured_epoch and stopped_early included
