"""scripts/tuning_valid.py compares tuning benchmarks on validation, on the (task, seed) pairs they all ran."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "tuning_valid.py"
spec = importlib.util.spec_from_file_location("tuning_valid", SCRIPT)
tuning_valid = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tuning_valid)


def run(task: int, seed: int, valid_errors: list[float]) -> SimpleNamespace:
    return SimpleNamespace(identity={"tasks": [task], "seed": seed},
                           metrics=[{"valid_error": error} for error in valid_errors])


def test_a_run_counts_at_its_last_epoch_and_at_its_best():
    means = tuning_valid.valid_means([run(1, 0, [0.5, 0.1, 0.3]), run(1, 1, [0.4, 0.2]), run(2, 0, [0.6, 0.5])])
    assert means["tasks"] == 2 and means["runs"] == 3
    assert means["best run, last epoch"] == pytest.approx((20 + 50) / 2)  # task 1: seed 1's 0.2; task 2: 0.5
    assert means["best run, best epoch"] == pytest.approx((10 + 50) / 2)  # task 1: seed 0's best epoch
    assert means["every run, last epoch"] == pytest.approx((30 + 20 + 50) / 3)


def test_folders_are_compared_on_the_task_and_seed_pairs_they_all_ran():
    protocol = [run(task, seed, [0.1 * task]) for task in (1, 2, 3) for seed in range(10)]  # 3 tasks, 10 seeds
    tuning = [run(task, seed, [0.05 * task]) for task in (2, 3) for seed in range(4)]  # 2 of its tasks, 4 seeds
    rows = dict(tuning_valid.compare({"protocol": protocol, "tuning": tuning}))
    assert rows["protocol"]["tasks"] == rows["tuning"]["tasks"] == 2
    assert rows["protocol"]["runs"] == rows["tuning"]["runs"] == 8
    assert rows["protocol"]["best run, last epoch"] == pytest.approx(25.0)  # tasks 2 and 3 only, not task 1's 10


def test_folders_with_no_pair_in_common_are_refused():
    with pytest.raises(ValueError, match="share no"):
        tuning_valid.compare({"a": [run(1, 0, [0.1])], "b": [run(2, 0, [0.1])]})
