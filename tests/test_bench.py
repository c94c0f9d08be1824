"""The benchmark: tables from records, and resuming after an interruption without redoing or losing runs."""

import json

import pytest

import memnet.bench as bench
import memnet.units as units
from memnet.records import read_json, write_json
from memnet.tables.babi import write_report


def grid(models, tasks="1", repeats=1):
    return {"models": models, "tasks": tasks, "variants": ["en"], "modes": ["per-task"], "repeats": repeats}


def options(**train):
    return {"model": {}, "train": train, "task": {}}


def fake_run(root, spec, data, label, seed, valid, test, per_task=None, seconds=1.0):
    run = root / "runs" / spec / data / label / f"seed-{seed}"
    summary = {"test_error": {"all": test, **(per_task or {})}, "valid_error": {"all": valid},
               "train_error": {"all": 0.0}, "seed": seed, "device": "cpu: test", "seconds": seconds}
    write_json(run / "summary.json", summary)


def test_table_keeps_the_best_by_validation_and_reports_spread(tmp_path):
    root = tmp_path / "bench"
    # task 1: seed 1 has the lowest valid error, though seed 2 has the lowest test error
    for seed, valid, test in [(0, 5.0, 4.0), (1, 1.0, 3.0), (2, 2.0, 0.0)]:
        fake_run(root, "memn2n-pe-ls-rn", "en-per-task", "task-1", seed, valid, test)
    for seed, valid, test in [(0, 9.0, 10.0), (1, 8.0, 8.0), (2, 9.5, 12.0)]:
        fake_run(root, "memn2n-pe-ls-rn", "en-per-task", "task-2", seed, valid, test)
    markdown = write_report(root)
    rows = {row["task"]: row for row in json.loads((root / "results.json").read_text())["rows"]}
    assert rows[1]["best"] == 3.0 and rows[1]["best_run"].endswith("seed-1")
    assert rows[2]["best"] == 8.0 and rows[2]["mean"] == pytest.approx(10.0) and rows[2]["std"] == pytest.approx(2.0)
    lines = markdown.splitlines()
    assert "| 1 | 3.0 | 2.3 ± 2.1 | 0.0 |" in lines  # ours best, ours mean ± std, published PE LS RN
    # per seed, mean over tasks: 7.0, 5.5, 6.0; each seed fails task 2 only. The paper, over all 20
    # tasks and over these 2 (0.0 and 8.3)
    assert "| **mean** | 5.5 | 6.2 ± 0.8 | 13.9 (4.2 over these 2) |" in lines and "| **failed (> 5%)** | 1 | 1.0 ± 0.0 | 11 (1 over these 2) |" in lines
    assert "published: 1k/pe-ls-rn" in markdown
    assert (root / "results.csv").read_text().splitlines()[0].startswith("group,task,best")


def test_joint_runs_are_chosen_as_one_model(tmp_path):
    root = tmp_path / "bench"
    fake_run(root, "memn2n-pe-ls-rn-joint", "en-joint", "joint", 0, 4.0, 5.0, {"1": 0.0, "2": 10.0}, seconds=60)
    fake_run(root, "memn2n-pe-ls-rn-joint", "en-joint", "joint", 1, 3.0, 6.0, {"1": 2.0, "2": 10.0}, seconds=60)
    write_json(root / "bench.json", {"repeats": 2, "invocations": [
        {"command": "memnet bench", "code_version": "abc", "libraries": {}, "python": "3"}]})
    markdown = write_report(root)
    rows = {row["task"]: row for row in json.loads((root / "results.json").read_text())["rows"]}
    assert rows[1]["best"] == 2.0 and rows[2]["best"] == 10.0  # both from seed 1, the best on all of valid
    assert "wall time of all runs: 2.0 min" in markdown  # each run once, not once per task it reports


def test_settings_run_side_by_side_are_pooled_and_chosen_per_task(tmp_path):
    root = tmp_path / "bench"
    for spec, valid in [("memn2n-pe-ls-rn", 2.0), ("memn2n-rpe-ls-rn", 1.0)]:  # task 1: rpe wins by valid
        fake_run(root, spec, "en-per-task", "task-1", 0, valid, 10 * valid)
    for spec, valid in [("memn2n-pe-ls-rn", 1.0), ("memn2n-rpe-ls-rn", 3.0)]:  # task 2: pe wins
        fake_run(root, spec, "en-per-task", "task-2", 0, valid, 10 * valid)
    markdown = write_report(root)
    rows = [row for row in json.loads((root / "results.json").read_text())["rows"] if "+" in row["group"]]
    assert [(row["task"], row["best"]) for row in rows] == [(1, 10.0), (2, 10.0)]
    assert rows[0]["group"] == "memn2n-pe-ls-rn+rpe-ls-rn en per-task"
    # one seed per setting: no spread column for either alone; the pooled spread is over each setting's seed
    assert "| 1 | 20.0 | 10.0 | 10.0 | 15.0 ± 7.1 | memn2n-rpe-ls-rn | 0.0 |" in markdown.splitlines()
    assert "| **mean** | 15.0 | 20.0 | 10.0 | 17.5 ± 3.5 |  | 13.9 (4.2 over these 2) |" in markdown.splitlines()


def test_seeds_missing_a_task_are_left_out_of_the_spread_and_counted(tmp_path):
    root = tmp_path / "bench"
    for seed, test in [(0, 1.0), (1, 9.0)]:
        fake_run(root, "lstm", "en-per-task", "task-1", seed, test, test)
    fake_run(root, "lstm", "en-per-task", "task-2", 0, 3.0, 3.0)  # seed 1 has not finished task 2
    lines = write_report(root).splitlines()
    assert "| **mean** | 2.0 | 2.0 ± 0.0 (1 seed with every task) | 51.3 (65.0 over these 2) |" in lines


def test_an_interrupted_benchmark_resumes_without_redoing_runs(babi_dir, tmp_path, monkeypatch):
    args = dict(name="b", grid=grid(["memn2n:paper"], repeats=3), options=options(epochs=2), data_dir=babi_dir, results=tmp_path,
                workers=1, engine="local")
    real, calls = units.run_job, {"n": 0}

    def interrupted(job, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(job, *args, **kwargs)

    monkeypatch.setattr(units, "run_job", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bench.run_bench(**args)
    runs = tmp_path / "b" / "runs" / "memn2n-paper" / "en-per-task" / "task-1"
    first = (runs / "seed-0" / "summary.json").stat().st_mtime_ns
    assert not (runs / "seed-1" / "summary.json").exists()
    assert not list(tmp_path.rglob("*.tmp"))  # no half-written record

    monkeypatch.setattr(units, "run_job", real)
    bench.run_bench(**args)
    assert all((runs / f"seed-{seed}" / "summary.json").exists() for seed in range(3))
    assert (runs / "seed-0" / "summary.json").stat().st_mtime_ns == first  # finished run not redone
    table = (tmp_path / "b" / "summary.md").read_text()
    assert "best of 3" in table
    resumed = read_json(tmp_path / "b" / "bench.json")["invocations"][-1]
    assert (resumed["runs_trained"], resumed["workers"]) == (2, 1)  # the record says how the wall time was spent

    calls["n"] = 0
    monkeypatch.setattr(units, "run_job", interrupted)  # a finished benchmark runs nothing again
    bench.run_bench(**args)
    assert calls["n"] == 0


def test_bad_model_spec_lists_the_valid_ones(babi_dir, tmp_path):
    with pytest.raises(ValueError, match="choose one of"):
        bench.run_bench("b", grid(["memn2n:pe-ls-xx"]), options(), data_dir=babi_dir, results=tmp_path)
    with pytest.raises(ValueError, match="choose one of"):
        bench.run_bench("b", grid(["transformer"]), options(), data_dir=babi_dir, results=tmp_path)
    assert not (tmp_path / "b").exists()


def test_wandb_puts_the_runs_and_the_table_in_one_offline_group(babi_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_RUN_GROUP", raising=False)
    bench.run_bench("w", grid(["memn2n:paper"]), options(epochs=1), data_dir=babi_dir, results=tmp_path, workers=1, use_wandb=True)
    runs = list((tmp_path / "w").rglob("offline-run-*"))
    assert len(runs) == 2  # the training run and the table, both offline
    assert __import__("os").environ["WANDB_RUN_GROUP"] == "w"  # every run of the benchmark in its group
    tables = list((tmp_path / "w" / "wandb").rglob("media/table/results_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    assert "best" in table["columns"] and table["data"][0][table["columns"].index("task")] == 1
