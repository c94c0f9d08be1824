"""The main job and the generator command, end to end on tiny data (offline)."""

import subprocess
import sys

from tasks.babi import load_task


def memnet(*args):
    return subprocess.run([sys.executable, "-m", "memnet.cli", *map(str, args)], capture_output=True, text=True)


def test_demo_trains_compares_and_shows_attention(tmp_path):
    result = memnet("demo", "--questions", 20, "--out", tmp_path / "demo", "--quiet")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "memn2n" in out and "lstm" in out  # the comparison table has both models
    for task in ("single-supporting-fact", "two-supporting-facts", "yes-no-questions"):
        assert task in out
    assert "hop 1" in out and "question: where is" in out and "predicted:" in out
    assert f"records (configs, metrics, checkpoints, data) in {tmp_path / 'demo'}" in out
    assert (tmp_path / "demo" / "runs" / "memn2n-task-2" / "summary.json").exists()


def test_generate_command_writes_files_the_loader_reads(tmp_path):
    result = memnet("data", "generate", "--out", tmp_path / "gen", "--tasks", "1,19", "--questions", 30, "--seed", 3)
    assert result.returncode == 0, result.stderr
    splits = load_task(tmp_path / "gen", "en", 19)
    assert (len(splits["train"]), len(splits["valid"]), len(splits["test"])) == (30, 3, 30)
    again = memnet("data", "generate", "--out", tmp_path / "again", "--tasks", "1,19", "--questions", 30, "--seed", 3)
    assert again.returncode == 0
    for name in ("qa1_single-supporting-fact_test.txt", "qa19_path-finding_train.txt"):
        assert (tmp_path / "gen" / "en" / name).read_bytes() == (tmp_path / "again" / "en" / name).read_bytes()
    bad = memnet("data", "generate", "--out", tmp_path / "x", "--tasks", "1", "--actors", 50)
    assert bad.returncode == 2 and "takes" in bad.stderr
