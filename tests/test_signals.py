"""Stopping a command, politely or not, loses nothing: what finished is kept, what was in flight resumes exactly."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TINY = ["--dim", "6", "--hops", "1"]


def memnet(*args) -> list[str]:
    return [sys.executable, "-m", "memnet.cli", *args]


def wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_sigterm_stops_train_resumably_and_the_resumed_run_is_the_whole_run(babi_dir, tmp_path):
    args = ["train", "--task", "babi:1", "--data-dir", str(babi_dir), *TINY, "--quiet", "--epochs", "400", "--random-noise"]
    whole = subprocess.run(memnet(*args, "--out", str(tmp_path / "whole")), capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    process = subprocess.Popen(memnet(*args, "--out", str(tmp_path / "cut")), stderr=subprocess.PIPE, text=True)
    wait_for(lambda: lines(tmp_path / "cut" / "metrics.jsonl") >= 5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err and "--resume" in err
    assert not (tmp_path / "cut" / "summary.json").exists() and (tmp_path / "cut" / "checkpoint.pt").exists()
    resumed = subprocess.run(memnet(*args, "--out", str(tmp_path / "cut"), "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    summary = lambda run: json.loads((tmp_path / run / "summary.json").read_text())
    assert summary("cut")["test_error"] == summary("whole")["test_error"]
    assert summary("cut")["train_error"] == summary("whole")["train_error"]


def test_a_bench_worker_killed_mid_epoch_loses_only_its_run_in_flight(babi_dir, tmp_path):
    args = ["bench", "--name", "b", "--models", "memn2n:paper", "--tasks", "1", "--repeats", "2", "--engine", "local", "--workers", "2",
            "--data-dir", str(babi_dir), *TINY, "--epochs", "300"]
    whole = subprocess.run(memnet(*args, "--results", str(tmp_path / "whole")), capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    runs = tmp_path / "cut" / "b" / "runs" / "memn2n-paper" / "en-per-task" / "task-1"
    process = subprocess.Popen(memnet(*args, "--results", str(tmp_path / "cut")), stderr=subprocess.PIPE, text=True)
    wait_for(lambda: lines(runs / "seed-0" / "metrics.jsonl") >= 3)
    workers = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    os.kill(int(workers[0]), signal.SIGKILL)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2 and "Traceback" not in err and "terminated abruptly" in err, err
    again = subprocess.run(memnet(*args, "--results", str(tmp_path / "cut")), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    for seed in (0, 1):
        summary = lambda root: json.loads((root / "b" / "runs" / "memn2n-paper" / "en-per-task" / "task-1" / f"seed-{seed}" / "summary.json").read_text())
        assert summary(tmp_path / "cut")["test_error"] == summary(tmp_path / "whole")["test_error"]


def test_a_run_folder_copied_without_its_checkpoint_trains_again_from_the_start(babi_dir, tmp_path):
    args = ["train", "--task", "babi:1", "--data-dir", str(babi_dir), *TINY, "--quiet", "--epochs", "3", "--preset", "paper"]
    first = subprocess.run(memnet(*args, "--out", str(tmp_path / "run")), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    (tmp_path / "run" / "checkpoint.pt").unlink()
    (tmp_path / "run" / "summary.json").unlink()
    again = subprocess.run(memnet(*args, "--out", str(tmp_path / "run"), "--resume"), capture_output=True, text=True)
    assert again.returncode == 0 and "has no checkpoint: training this run from the start" in again.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["test_error"] == summary["test_error"]
    assert lines(tmp_path / "run" / "metrics.jsonl") == 3
