"""Weight decay that starts at a later epoch (`weight_decay_from`), alone and in populations."""

import pytest

from memnet.spec import SpecError, resolve
from memnet.train import train_run
from tests.test_population import assert_members_are_alone_runs, metrics, spec


def adagrad_run(babi_dir, **train):
    options = {"optimizer": "adagrad", "lr": 0.5, "loss": "mean", "clip_norm": 0.0, "epochs": 4, **train}
    return resolve("qrn", None, {"dim": 8}, options, {"name": "babi:1", "data_dir": str(babi_dir)})


def test_epochs_before_the_weight_decay_starts_are_those_of_a_run_without_it(babi_dir, tmp_path):
    runs = {"later": adagrad_run(babi_dir, weight_decay=0.05, weight_decay_from=2), "none": adagrad_run(babi_dir),
            "always": adagrad_run(babi_dir, weight_decay=0.05)}
    for name, run in runs.items():
        train_run(run, tmp_path / name, progress=False, device="cpu")
    later, none, always = (metrics(tmp_path / name) for name in ("later", "none", "always"))
    assert [line["train_loss"] for line in later[:2]] == [line["train_loss"] for line in none[:2]]
    assert later[1]["train_loss"] != always[1]["train_loss"]  # the decay is strong enough to tell apart
    assert later[3]["valid_loss"] != none[3]["valid_loss"]  # and from epoch 2 on, it takes part


def test_members_whose_weight_decay_starts_at_other_epochs_match_alone_runs(babi_dir, tmp_path):
    specs = [spec(babi_dir, 1, seed, optimizer="adagrad", weight_decay=0.05, weight_decay_from=start, lr=0.1, epochs=3,
                  linear_start=0) for seed, start in [(0, 2), (1, 0), (2, 1)]]
    assert_members_are_alone_runs(specs, tmp_path)


def test_a_start_without_weight_decay_is_refused(babi_dir):
    with pytest.raises(SpecError, match="weight_decay_from sets when weight decay starts; this run's weight_decay is 0"):
        adagrad_run(babi_dir, weight_decay_from=3)
