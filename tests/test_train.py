"""The training loop: it learns, it records, it checkpoints, it resumes, and it refuses garbage."""

import json
import subprocess
import sys

import pytest
import torch

import memnet.loop as loop
import memnet.train as train_module
from memnet.batches import DataSizes
from memnet.loop import Diverged
from memnet.models import build_model, model_config
from memnet.spec import TrainSpec, resolve
from memnet.train import evaluate, train_repeats, train_run
from tasks.registry import load
from tasks.vocab import Vocab

SMALL = {"dim": 8, "hops": 2}


def spec(babi_dir, model="memn2n", options=SMALL, **config):
    return resolve(model, None, options, {"epochs": 4, **config}, {"name": "babi:1", "data_dir": str(babi_dir)})


def run(babi_dir, out, wandb=False, **config):
    return train_run(spec(babi_dir, **config), out, progress=False, use_wandb=wandb), None


def test_a_tiny_run_lowers_the_loss_and_writes_its_records(babi_dir, tmp_path):
    summary, _ = run(babi_dir, tmp_path / "run", epochs=15)
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == list(range(15))
    assert metrics[-1]["train_loss"] < 0.8 * metrics[0]["train_loss"]
    assert set(summary) >= {"test_error", "valid_error", "train_error", "device", "seconds", "seed"}
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["environment"]["libraries"]["torch"] and config["environment"]["code_version"]
    assert config["spec"]["model"]["options"]["dim"] == 8


def test_checkpoint_loads_safely_and_predicts_the_same(babi_dir, tmp_path):
    run(babi_dir, tmp_path / "run")
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)  # no arbitrary pickles
    data = load("babi:1", data_dir=babi_dir, variant="en", vocab=Vocab.from_state_dict(saved["vocab"]))
    name = saved["spec"]["model"]["name"]
    model = build_model(name, model_config(name, saved["spec"]["model"]["options"]), DataSizes(**saved["sizes"]))
    model.load_state_dict(saved["model"])
    reloaded = evaluate(model, data.splits["test"])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert round(100 * reloaded["error"], 2) == summary["test_error"]["all"]


def test_resume_after_an_interruption_gives_the_uninterrupted_run(babi_dir, tmp_path, monkeypatch):
    config = {"epochs": 5, "linear_start": 2, "random_noise": True}
    uninterrupted, _ = run(babi_dir, tmp_path / "whole", **config)

    real_evaluate, calls = train_module.evaluate, {"n": 0}

    def interrupt_in_epoch_4(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate", interrupt_in_epoch_4)
    with pytest.raises(KeyboardInterrupt):
        run(babi_dir, tmp_path / "cut", **config)
    monkeypatch.setattr(train_module, "evaluate", real_evaluate)
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["state"]["epoch"] == 3
    with pytest.raises(FileExistsError, match="--resume"):
        run(babi_dir, tmp_path / "cut", **config)
    resumed = train_run(spec(babi_dir, **config), tmp_path / "cut", resume=True, progress=False)
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(7))  # 2 linear-start epochs + 5, each once
    assert resumed["test_error"] == uninterrupted["test_error"] and resumed["train_error"] == uninterrupted["train_error"]


def test_linear_start_then_softmax(babi_dir, tmp_path):
    run(babi_dir, tmp_path / "run", epochs=2, linear_start=3)
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["phase"] for m in metrics] == ["linear"] * 3 + ["softmax"] * 2
    assert [m["lr"] for m in metrics] == [0.005] * 3 + [0.01] * 2


def test_learning_rate_halves_on_schedule():
    config = TrainSpec(lr=0.01, lr_halve_every=25)
    assert [loop.learning_rate(config, epoch, 0) for epoch in (0, 24, 25, 50, 99)] == [0.01, 0.01, 0.005, 0.0025, 0.00125]


def test_nan_loss_stops_the_run_with_a_message(babi_dir, tmp_path, monkeypatch):
    real = train_module.loss_and_wrong

    def nan_loss(logits, target):
        loss, wrong = real(logits, target)
        return loss * float("nan"), wrong

    monkeypatch.setattr(train_module, "loss_and_wrong", nan_loss)
    with pytest.raises(Diverged, match=r"loss became nan at epoch 1 \(seed 0\)"):
        run(babi_dir, tmp_path / "run")


def test_repeats_keep_the_lowest_validation_error(babi_dir, tmp_path):
    summary = train_repeats(spec(babi_dir, epochs=3), tmp_path / "runs", repeats=3, progress=False)
    assert [r["seed"] for r in summary["repeats"]] == [0, 1, 2]
    assert summary["valid_error"]["all"] == min(r["valid_error"]["all"] for r in summary["repeats"])
    assert (tmp_path / "runs" / summary["best_run"] / "checkpoint.pt").exists()


def test_train_command_end_to_end(babi_dir, tmp_path):
    out = tmp_path / "cli-run"
    command = [sys.executable, "-m", "memnet.cli", "train", "--task", "babi:1", "--data-dir", str(babi_dir), "--out", str(out),
               "--epochs", "2", "--dim", "8", "--preset", "pe-ls-rn", "--linear-start", "1", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "test error" in result.stdout and (out / "summary.json").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["spec"]["train"]["random_noise"] and config["spec"]["train"]["linear_start"] == 1
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 2 and "already holds this finished run" in again.stderr


@pytest.mark.parametrize("flags, message", [
    (["--model", "transformer"], "invalid choice"),
    (["--optimizer", "rmsprop"], "train.optimizer: should be 'sgd', 'adam', 'adamw' or 'adagrad' (got 'rmsprop')"),
    (["-o", "heads=4"], "model memn2n.heads: unknown option; valid options are"),
    (["--variant", "en-20k"], "no bAbI folder 'en-20k'"),
])
def test_bad_options_get_clear_errors(babi_dir, tmp_path, flags, message):
    command = [sys.executable, "-m", "memnet.cli", "train", "--task", "babi:1", "--data-dir", str(babi_dir),
               "--out", str(tmp_path / "x"), "--epochs", "1", *flags]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr


def test_wandb_logs_offline_with_attention_images(babi_dir, tmp_path):
    run(babi_dir, tmp_path / "run", epochs=2, wandb=True)
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1  # offline: nothing left the machine
    images = list(runs[0].rglob("media/images/attention_*.png"))
    assert len(images) >= 2 * 3  # three validation examples after each of the 2 epochs
