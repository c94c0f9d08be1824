"""`memnet bench --engine ray` on a real two-node Ray cluster on loopback: the same records as the local
engine run by run, resume across engines, a failed run that does not stop the grid, and a worker killed
mid-run whose runs resume from the last checkpoint the driver holds.

The cluster is two `ray start --block` processes, a head on 127.0.0.2 and a second node on 127.0.0.3
(Ray turns a node asked to be on 127.0.0.1 into the machine's outward address, other loopback
addresses it keeps); terminating them ends every process of their nodes. Auth is off and nothing
listens beyond loopback.
"""

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")  # CI installs memnet[ray]; a machine without Ray skips this file

import memnet.bench as bench  # noqa: E402
from memnet import ray_engine  # noqa: E402
from memnet.cli import main  # noqa: E402
from memnet.run_record import read_pack, write_pack  # noqa: E402
from tests.conftest import write_task  # noqa: E402
from tests.test_population import assert_same_run  # noqa: E402

OPTIONS = {"model": {"dim": 6}, "train": {"epochs": 1}, "task": {}}
RUNS = [f"runs/{model}/en-per-task/task-1/seed-{seed}" for model in ("lstm", "memn2n-paper") for seed in (0, 1)]


def grid(models, repeats=2):
    return {"models": models, "tasks": "1", "variants": ["en"], "modes": ["per-task"], "repeats": repeats}


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


def wait_for(what: str, check, seconds: float = 90.0):
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"Ray cluster: {what} not up after {seconds:.0f} s")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def ray_env():
    """Auth off and no usage reports, for this process (the driver) and the nodes it starts."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        yield


@pytest.fixture(scope="module")
def cluster(ray_env, tmp_path_factory):
    """A head and a second node, one CPU each; yields the head's address and the two `ray start` processes' ids."""
    port, temp = free_port("127.0.0.2"), tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths are limited
    logs = tmp_path_factory.mktemp("ray-logs")  # each node's `ray start` output, for a failure's post-mortem
    env = {**os.environ, "TMPDIR": temp}  # the workers' run folders (and a killed one's leftovers) go with the cluster
    nodes, outputs = [], []

    def start(name: str, *flags: str) -> None:
        outputs.append((logs / f"{name}.log").open("w"))
        nodes.append(subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--block", "--num-cpus=1",
                                       "--disable-usage-stats", *flags], env=env, stdout=outputs[-1],
                                      stderr=subprocess.STDOUT, start_new_session=True))

    try:
        start("head", "--head", "--node-ip-address=127.0.0.2", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}")
        wait_for("the head", lambda: listening("127.0.0.2", port))
        start("node", f"--address=127.0.0.2:{port}", "--node-ip-address=127.0.0.3")
        ray.init(address=f"127.0.0.2:{port}", log_to_driver=False)
        try:
            wait_for("the second node", lambda: sum(node["Alive"] for node in ray.nodes()) == 2)
        finally:
            ray.shutdown()
        yield {"address": f"127.0.0.2:{port}", "pids": [node.pid for node in nodes]}
    finally:
        for node in reversed(nodes):  # `ray start --block` ends its node's processes when terminated
            node.terminate()
        for node in nodes:
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.kill()
        for output in outputs:
            output.close()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def babi(tmp_path_factory) -> Path:
    """The `babi_dir` fixture's task 1 (tests/conftest.py), once for the module."""
    root = tmp_path_factory.mktemp("babi")
    write_task(root / "en", "qa1_single-supporting-fact_train.txt", 40, seed=1)
    write_task(root / "en", "qa1_single-supporting-fact_test.txt", 10, seed=2)
    return root


@pytest.fixture(scope="module")
def grids(cluster, babi, tmp_path_factory):
    """The same grid (LSTM runs alone, MemN2N as a population of 2) by the local engine and on the cluster."""
    results = tmp_path_factory.mktemp("grids")
    local = bench.run_bench("grid", grid(["memn2n:paper", "lstm"]), OPTIONS, data_dir=babi, results=results / "local",
                            workers=1, engine="local")
    on_ray = bench.run_bench("grid", grid(["memn2n:paper", "lstm"]), OPTIONS, data_dir=babi, results=results / "ray",
                             engine="ray", address=cluster["address"], compile=False)
    return local, on_ray


def summary(root: Path, run: str) -> dict:
    return json.loads((root / run / "summary.json").read_text())


def last_invocation(root: Path) -> dict:
    return json.loads((root / "bench.json").read_text())["invocations"][-1]


def table(root: Path) -> list[str]:
    """summary.md without its wall-time line, the one thing that differs between two runs of a grid."""
    return [line for line in (root / "summary.md").read_text().splitlines() if not line.startswith("- wall time")]


def test_a_grid_on_two_nodes_has_the_local_engines_records_and_table(grids):
    local, on_ray = grids
    assert sorted(str(p.parent.relative_to(on_ray)) for p in on_ray.rglob("summary.json") if p.parent != on_ray) == RUNS
    for run in RUNS:  # a run alone == a population member, to float rounding: test errors identical
        assert_same_run(local / run, on_ray / run)
        config = json.loads((on_ray / run / "config.json").read_text())
        assert config["environment"]["command"] == " ".join(sys.argv)  # the driver's command, not Ray's worker
        assert (on_ray / run / "checkpoint.pt").exists() and not list((on_ray / run).glob("*.tmp"))
    assert table(on_ray) == table(local)  # memnet report: the same table from either engine's records
    rows = lambda root: [{k: v for k, v in row.items() if k != "seconds"} for row in json.loads((root / "results.json").read_text())["rows"]]
    assert rows(on_ray) == rows(local)
    ran = last_invocation(on_ray)
    assert ran["engine"] == "ray" and sorted(ran["ray"]["nodes"]) == ["127.0.0.2", "127.0.0.3"] and ran["ray"]["failed"] == []
    assert sorted(ran["ray"]["runs_by_node"]) == ["127.0.0.2", "127.0.0.3"]  # 3 units on 2 one-CPU nodes: both trained


def test_resume_across_engines_and_a_failed_run_that_does_not_stop_the_grid(grids, cluster, babi, tmp_path, capfd):
    local, on_ray = grids
    started_here, started_there = tmp_path / "local" / "grid", tmp_path / "ray" / "grid"
    shutil.copytree(local, started_here)
    shutil.copytree(on_ray, started_there)
    lstm = [f"runs/lstm/en-per-task/task-1/seed-{seed}" for seed in (0, 1)]
    for root in (started_here, started_there):  # as if stopped before these runs finished: not in the pack, no summary
        write_pack(root, {path: run for path, run in read_pack(root).items() if path not in lstm})
        (root / lstm[0] / "summary.json").unlink()  # the checkpoint stays: the run resumes from it
    (started_here / lstm[1] / "summary.json").unlink()
    (started_here / lstm[1] / "checkpoint.pt").write_bytes(b"not a checkpoint")

    bench.run_bench("grid", grid(["memn2n:paper", "lstm"]), OPTIONS, data_dir=babi, results=tmp_path / "local", engine="ray",
                    address=cluster["address"], compile=False)  # begun locally, finished on Ray
    bench.run_bench("grid", grid(["memn2n:paper", "lstm"]), OPTIONS, data_dir=babi, results=tmp_path / "ray", workers=1,
                    engine="local")  # begun on Ray, finished locally
    for root, origin in [(started_here, local), (started_there, on_ray)]:
        assert summary(root, lstm[0]) == summary(origin, lstm[0])  # resumed from its last checkpoint: the same record
        assert len(json.loads((root / lstm[0] / "config.json").read_text())["resumed"]) == 1
    failed = last_invocation(started_here)["ray"]["failed"]
    assert [entry["run"] for entry in failed] == [str(started_here / lstm[1])]
    assert str(started_here / lstm[1] / "checkpoint.pt") in failed[0]["error"]  # the real folder, not the worker's
    out, err = capfd.readouterr()
    assert "lstm en babi:1 seed 1 failed: RecordError" in out + err and "1 run(s) failed" in err
    assert not (started_here / lstm[1] / "summary.json").exists()


def descendants(roots: list[int]) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], list(roots)
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def kill_a_worker_once_checkpointed(runs: list[Path], node_pids: list[int], killed: list[int]) -> None:
    """SIGKILL the Ray worker training `runs` as soon as the driver holds a checkpoint of every one of them."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not killed:
        if all((run / "checkpoint.pt").exists() for run in runs):
            for pid in descendants(node_pids):
                try:
                    title = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if title.startswith(b"ray::train_unit"):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
        time.sleep(0.05)


def test_a_worker_killed_mid_run_is_resumed_from_the_last_checkpoint(cluster, babi, tmp_path, monkeypatch):
    options = {**OPTIONS, "train": {"epochs": 40}}
    local = bench.run_bench("long", grid(["memn2n:paper"]), options, data_dir=babi, results=tmp_path / "local", workers=1, engine="local")
    monkeypatch.setattr(ray_engine, "CHECKPOINT_SECONDS", 0.3)  # the driver gets a population's checkpoints every 0.3 s
    root = tmp_path / "ray" / "long"
    runs = [root / f"runs/memn2n-paper/en-per-task/task-1/seed-{seed}" for seed in (0, 1)]
    killed = []
    killer = threading.Thread(target=kill_a_worker_once_checkpointed, args=(runs, cluster["pids"], killed))
    killer.start()
    try:
        # workers=1: both seeds in one population (with more, the bench would cut it in two), so one kill stops both
        bench.run_bench("long", grid(["memn2n:paper"]), options, data_dir=babi, results=tmp_path / "ray", engine="ray",
                        address=cluster["address"], compile=False, workers=1)
    finally:
        killer.join()
    assert killed, "no worker was killed: the unit ended before its first checkpoint reached the driver"
    for run in runs:
        config = json.loads((run / "config.json").read_text())
        assert len(config["resumed"]) == 1  # the retry started from the driver's checkpoint, not from scratch
        assert [line["epoch"] for line in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())] == list(range(40))
        assert_same_run(local / run.relative_to(root), run)  # complete records, as if nothing had happened
    assert last_invocation(root)["ray"]["failed"] == []


def test_memnet_bench_starts_ray_on_this_machine_without_an_address(ray_env, babi, tmp_path, capsys, monkeypatch):
    main(["bench", "--name", "here", "--engine", "ray", "--workers", "1", "--models", "lstm", "--tasks", "1", "--epochs", "1",
          "--dim", "6", "--data-dir", str(babi), "--results", str(tmp_path)])
    ran = last_invocation(tmp_path / "here")
    assert ran["ray"]["address"] == "local" and ran["ray"]["nodes"] == ["127.0.0.1"]  # on loopback only
    assert (tmp_path / "here" / "runs/lstm/en-per-task/task-1/seed-0/summary.json").exists()
    assert "tables and run records in" in capsys.readouterr().out

    with pytest.raises(SystemExit) as exit:
        main(["bench", "--name", "x", "--address", "auto", "--data-dir", str(babi), "--results", str(tmp_path)])
    assert exit.value.code == 2 and "--address: only with --engine ray" in capsys.readouterr().err
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "ray" else real(name, *args))
    with pytest.raises(SystemExit) as exit:
        main(["bench", "--name", "x", "--engine", "ray", "--data-dir", str(babi), "--results", str(tmp_path)])
    assert exit.value.code == 2 and "pip install 'memnet[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()

