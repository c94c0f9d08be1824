"""Packed run records: a benchmark keeps every finished run in one file, and everything reads it."""

import gzip
import json
import shutil
import subprocess
import sys

import pytest

import memnet.bench as bench
import memnet.units as units
from memnet.records import RecordError, read_json, write_json
from memnet.run_record import PACK, pack, read_pack, read_run, runs_of, summary_of, write_pack
from memnet.tables.babi import babi_tables


def grid(models, tasks="1", repeats=1):
    return {"models": models, "tasks": tasks, "variants": ["en"], "modes": ["per-task"], "repeats": repeats}


def options(**train):
    return {"model": {}, "train": train, "task": {}}


def fake_run(root, path, seed, valid, test, extra=None):
    run = root / path
    write_json(run / "config.json", {"spec": {"model": {"name": "memn2n"}}, "seed": seed})
    (run / "metrics.jsonl").write_text(json.dumps({"epoch": 0, "valid_error": valid / 100}) + "\n")
    for name, obj in (extra or {}).items():
        write_json(run / name, obj)
    write_json(run / "summary.json", {"test_error": {"all": test}, "valid_error": {"all": valid}, "train_error": {"all": 0.0},
                                      "seed": seed, "device": "cpu: test", "seconds": 1.0})
    return run


def test_a_packed_record_round_trips_exactly_and_the_pack_is_plain_gzip_json_lines(tmp_path):
    root = tmp_path / "bench"
    run = fake_run(root, "runs/memn2n/en-per-task/task-1/seed-0", 0, 1.5, 2.25, extra={"by_length.json": {"exact_match": {"5": 100.0}}})
    (run / "code-abc.diff").write_text("a diff")
    identity = {"setting": "memn2n", "variant": "en", "mode": "per-task", "tasks": [1], "seed": 0}
    assert pack(root, identities={"runs/memn2n/en-per-task/task-1/seed-0": identity}) == ["runs/memn2n/en-per-task/task-1/seed-0"]
    expected = read_run(run, root, identity)
    shutil.rmtree(root / "runs")  # a fresh clone: the pack alone
    (packed,) = read_pack(root).values()
    assert packed == expected and packed.extra == {"by_length.json": {"exact_match": {"5": 100.0}}}
    assert (root / "code-abc.diff").read_text() == "a diff"  # each diff once, beside the pack
    lines = gzip.decompress((root / PACK).read_bytes()).decode().splitlines()
    assert [json.loads(line)["path"] for line in lines] == ["runs/memn2n/en-per-task/task-1/seed-0"]
    before = (root / PACK).read_bytes()
    write_pack(root, read_pack(root))
    assert (root / PACK).read_bytes() == before  # the same runs give the same bytes (git sees no change)
    assert pack(root) == []  # packing again adds nothing


def test_tables_from_a_pack_equal_tables_from_run_folders(tmp_path):
    root = tmp_path / "bench"
    for seed, valid, test in [(0, 5.0, 4.0), (1, 1.0, 3.0), (2, 2.0, 0.0)]:
        fake_run(root, f"runs/memn2n/en-per-task/task-1/seed-{seed}", seed, valid, test)
    from_folders = babi_tables(root)
    pack(root, identities={f"runs/memn2n/en-per-task/task-1/seed-{s}": {"setting": "memn2n", "variant": "en", "mode": "per-task",
                                                                        "tasks": [1], "seed": s} for s in range(3)})
    shutil.rmtree(root / "runs")
    assert babi_tables(root) == from_folders
    assert summary_of(root / "runs/memn2n/en-per-task/task-1/seed-1")["test_error"]["all"] == 3.0


def test_a_damaged_pack_is_named_with_what_to_do(tmp_path):
    (tmp_path / PACK).write_bytes(b"not gzip")
    with pytest.raises(RecordError, match=rf"{PACK} cannot be read.*restore it from git"):
        read_pack(tmp_path)
    (tmp_path / PACK).write_bytes(gzip.compress(b'{"path": "runs/a"}\n'))
    with pytest.raises(RecordError, match=rf"{PACK}:1: not a run record"):
        read_pack(tmp_path)


def test_a_finished_benchmark_without_run_folders_trains_nothing_and_extend_trains_only_the_new_runs(babi_dir, tmp_path, monkeypatch):
    args = dict(name="b", options=options(epochs=1), data_dir=babi_dir, results=tmp_path, workers=1, engine="local")
    bench.run_bench(grid=grid(["memn2n:paper"], repeats=2), **args)
    root = tmp_path / "b"
    packed = read_pack(root)
    assert sorted(packed) == [f"runs/memn2n-paper/en-per-task/task-1/seed-{seed}" for seed in range(2)]  # packed as each finished
    assert packed["runs/memn2n-paper/en-per-task/task-1/seed-1"].identity == {
        "model": "memn2n", "preset": "paper", "setting": "memn2n-paper", "variant": "en", "mode": "per-task", "tasks": [1], "seed": 1}
    table = (root / "summary.md").read_text()
    shutil.rmtree(root / "runs")  # a fresh clone of a committed benchmark

    trained = []
    real = units.run_job
    monkeypatch.setattr(units, "run_job", lambda job, *a, **k: trained.append(job.run_dir) or real(job, *a, **k))
    bench.run_bench(grid=grid(["memn2n:paper"], repeats=2), **args)
    assert trained == [] and (root / "summary.md").read_text() == table

    bench.run_bench(grid=grid(["memn2n:paper"], repeats=3), extend=True, **args)
    assert [run.split("/")[-1] for run in trained] == ["seed-2"]  # only the new seed
    assert sorted(read_pack(root)) == [f"runs/memn2n-paper/en-per-task/task-1/seed-{seed}" for seed in range(3)]
    assert packed["runs/memn2n-paper/en-per-task/task-1/seed-0"] == read_pack(root)["runs/memn2n-paper/en-per-task/task-1/seed-0"]
    assert "best of 3" in (root / "summary.md").read_text()
    config = read_pack(root)["runs/memn2n-paper/en-per-task/task-1/seed-2"].config
    assert config["engine"] == {"engine": "alone", "threads": config["engine"]["threads"]}  # how it trained is recorded


def test_a_packed_run_of_another_spec_is_refused_before_any_work(babi_dir, tmp_path):
    args = dict(name="b", grid=grid(["memn2n:paper"]), data_dir=babi_dir, results=tmp_path, workers=1, engine="local")
    bench.run_bench(options=options(epochs=1), **args)
    root = tmp_path / "b"
    shutil.rmtree(root / "runs")
    record = read_json(root / "bench.json")
    record["options"] = options(epochs=2)  # as if the pack held runs of another spec than the grid's
    write_json(root / "bench.json", record)
    with pytest.raises(ValueError, match=r"holds runs/memn2n-paper/en-per-task/task-1/seed-0 with another spec \(train.epochs: 1 -> 2\)"):
        bench.run_bench(options=options(epochs=2), **args)


def test_report_runs_prints_every_record_under_the_results_folder(tmp_path):
    results = tmp_path / "results"
    fake_run(results / "one", "runs/memn2n/en-per-task/task-1/seed-0", 0, 1.0, 2.0)
    pack(results / "one")
    fake_run(results / "two" / "arm", "runs/lstm/en-per-task/task-2/seed-3", 3, 4.0, 5.0)  # not packed yet: read from its folder
    out = subprocess.run([sys.executable, "-m", "memnet.cli", "report", str(results), "--runs"], capture_output=True, text=True, check=True)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["path"] for line in lines] == ["one/runs/memn2n/en-per-task/task-1/seed-0", "two/arm/runs/lstm/en-per-task/task-2/seed-3"]
    assert {"path", "config", "summary", "metrics"} <= set(lines[0])
    assert lines[1]["summary"]["test_error"] == {"all": 5.0} and lines[1]["metrics"] == [{"epoch": 0, "valid_error": 0.04}]
    assert runs_of(results / "two" / "arm")["runs/lstm/en-per-task/task-2/seed-3"].config["seed"] == 3
