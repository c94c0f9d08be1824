"""`memnet bench --engine ray`: the benchmark's units as Ray tasks, on one machine or a cluster.

    driver (memnet bench)                          worker (any node of the cluster)
    units_of(grid) -> a task per unit  ------->    train_unit(jobs, records, data): trains each run of the
      with the runs' records so far (bytes)          unit in a temporary folder of its own machine (a
      and their task data (ray.put, once)            population, or one run alone, as memnet.bench does)
    writes every record it receives  <--------     yields the record files that changed, every
      into the real run folder (atomic),             CHECKPOINT_SECONDS, then all of them with the
      one bar over the grid                          summaries when the unit ends

No shared file system: data go out through Ray's object store and records come back through it, and
only the driver writes the benchmark folder. A unit is a population where its runs can share one
(memnet.population), otherwise one run; each declares its resources (1 CPU; 1 GPU on `--device cuda`).

Faults. A worker or node that dies fails the unit's task; the driver then submits it again (at most
RETRIES times) with the records it holds, so the run resumes from the last checkpoint that reached
the driver (sent every CHECKPOINT_SECONDS; a population writes one as often), on whichever node Ray
picks. Ray's own retry is off (max_retries=0): it would resend the task's first arguments, i.e. the
runs' records as they were when the unit was first submitted. An error inside a run (a damaged record, a bug) fails that unit's
runs: each is reported with its error, and the rest of the grid goes on. A driver that dies takes its
tasks with it (Ray ends the tasks of a driver that is gone); the same command run again finishes the
grid from the records on disk, as for the other engines.
"""

import dataclasses
import os
import sys
import tempfile
import threading
import traceback
from contextlib import ExitStack, contextmanager
from pathlib import Path

from memnet.locks import hold
from memnet.records import write_atomic
from memnet.run_record import CHECKPOINT, CONFIG, METRICS, SUMMARY
from memnet.spec import SpecError
from memnet.units import cached_data, run_unit

CHECKPOINT_SECONDS = 60.0  # how often a worker sends its runs' records to the driver (and a population checkpoints)
RETRIES = 3  # resubmissions of a unit whose worker or node died
RECORDS = (CHECKPOINT, CONFIG, METRICS)  # sent in this order: a checkpoint before the metrics it covers
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def require_ray() -> None:
    """Refuse `--engine ray` before any work where Ray is not installed."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise RuntimeError("--engine ray needs Ray: pip install 'memnet[ray]' (or pip install ray)")


# ---- the worker's side ------------------------------------------------------------------------------------------

def record_names(folder: Path) -> list[str]:
    """The record files of a run folder, in the order they are sent and written: summary.json last, so a
    folder that has one (a finished run, for every engine) has everything else before it."""
    names = [name for name in RECORDS if (folder / name).exists()]
    names += sorted(path.name for path in folder.glob("code-*.diff"))
    return names + ([SUMMARY] if (folder / SUMMARY).exists() else [])


def changed_records(folders: dict[str, Path], sent: dict[tuple, tuple]) -> dict[str, dict[str, bytes]]:
    """{run folder on the driver: {file name: bytes}} of the records that changed since `sent`, which is updated.

    A record is replaced atomically (memnet.records.write_atomic), so a read sees a whole old or new
    version; metrics.jsonl is appended to, and a resume forgives a half-written last line and lines past
    its checkpoint (memnet.train.restore).
    """
    changed = {}
    for run_dir, stamps in stamps_of(folders).items():
        for name, stamp in stamps.items():
            if sent.get((run_dir, name)) != stamp:
                changed.setdefault(run_dir, {})[name] = (folders[run_dir] / name).read_bytes()
                sent[(run_dir, name)] = stamp
    return changed


def stamps_of(folders: dict[str, Path]) -> dict[str, dict[str, tuple]]:
    """{run folder on the driver: {file name: (mtime, size)}}: what tells a record changed, taken before it is read."""
    stamps = {}
    for run_dir, folder in folders.items():
        for name in record_names(folder) if folder.exists() else []:
            stat = (folder / name).stat()
            stamps.setdefault(run_dir, {})[name] = (stat.st_mtime_ns, stat.st_size)
    return stamps


def train_unit(unit, records: dict, data_refs: list, device: str, compile: bool, checkpoint_seconds: float, command: list[str]):
    """The Ray task (a generator): train `unit` in a temporary folder on this machine and stream its records.

    Yields {"node": its address} as it starts, {"records": ...} whenever records changed, and last
    {"records": ..., "summaries": [...]} or {"records": ..., "error": message}. `records` are the
    runs' files so far ({run folder: {name: bytes}}), from which each run resumes.
    """
    import ray

    from memnet.records import code_identity

    code_identity()  # the code this worker imported, as a pool worker takes it (memnet.units.start_worker)
    data = ray.get(data_refs)
    argv, sys.argv = sys.argv, list(command)  # records name the command that asked for the run, not Ray's worker
    try:
        with tempfile.TemporaryDirectory(prefix="memnet-ray-") as tmp:
            folders = {job.run_dir: Path(tmp) / f"run-{k}" for k, job in enumerate(unit)}
            for run_dir, files in records.items():
                for name, blob in files.items():
                    write_atomic(folders[run_dir] / name, blob)
            local = [dataclasses.replace(job, run_dir=str(folders[job.run_dir])) for job in unit]
            yield {"node": ray.util.get_node_ip_address()}
            sent = {(run_dir, name): stamp for run_dir, stamps in stamps_of(folders).items() for name, stamp in stamps.items()}
            result = {}

            def work():
                try:
                    result["summaries"] = run_unit(local, device, False, "population", compile, data=data,
                                                   checkpoint_seconds=checkpoint_seconds)
                except BaseException as error:  # reported to the driver as the unit's error, with the run folders it knows
                    traceback.print_exc()
                    result["error"] = f"{type(error).__name__}: {error}"

            thread = threading.Thread(target=work, daemon=True)
            thread.start()
            thread.join(checkpoint_seconds)
            while thread.is_alive():
                changed = changed_records(folders, sent)
                if changed:
                    yield {"records": changed}
                thread.join(checkpoint_seconds)
            final = {"records": changed_records(folders, sent)}
            if "error" in result:
                final["error"] = real_paths(result["error"], folders)
            else:
                final["summaries"] = [{key: real_paths(value, folders) if key == "diverged" else value for key, value in summary.items()}
                                      for summary in result["summaries"]]
    finally:
        sys.argv = argv
    yield final  # after the folder is gone: the driver may end this worker as soon as it has the last message


def real_paths(message: str, folders: dict[str, Path]) -> str:
    """A message about a temporary folder, told about the run folder it stands for."""
    for run_dir, folder in folders.items():
        message = message.replace(str(folder), run_dir)
    return message


# ---- the driver's side -------------------------------------------------------------------------------------------

@contextmanager
def on_loopback():
    """Keep a Ray instance this process starts on 127.0.0.1.

    Ray gives a new node the machine's outward address even when asked for 127.0.0.1
    (ray._private.services.resolve_ip_for_localhost). Its switch for one-machine instances (named for
    Windows and macOS, where it is the default) makes the node's address the loopback one; it is read
    from the environment when Ray is imported, and by the processes the instance starts.
    """
    from ray._private import ray_constants

    saved_env, saved = os.environ.get(LOOPBACK_SWITCH), getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    os.environ[LOOPBACK_SWITCH] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved
        if saved_env is None:
            os.environ.pop(LOOPBACK_SWITCH, None)
        else:
            os.environ[LOOPBACK_SWITCH] = saved_env


def connect(address: str | None, workers: int | None):
    """Ray, connected: to the cluster at `address` ("auto": the one this machine has joined), or to a local
    instance started here (on 127.0.0.1, `workers` CPUs, no dashboard) when there is no address."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray would report usage online; a benchmark does not ask it to
    import ray

    if address is None:
        with on_loopback():
            ray.init(address="local", num_cpus=workers, include_dashboard=False)
    else:
        try:
            ray.init(address=address)
        except ConnectionError as error:
            raise RuntimeError(f"--address {address}: no Ray cluster answers there ({error}); start one with `ray start --head` "
                               "(see docs/ray.md), or leave --address out to start Ray on this machine") from None
    return ray


def use_gpu(device: str, gpus: float) -> bool:
    """Whether the units train on GPUs: the cluster's, not the driver's (Ray gives each unit its own)."""
    if device.startswith("cuda") and not gpus:
        raise RuntimeError(f"--device {device} asked for, but the Ray cluster has no GPU; use --device auto or cpu")
    return device.startswith("cuda") or (device == "auto" and gpus > 0)


def read_records(run_dir: str) -> dict[str, bytes]:
    """What the driver holds of a run: the files it sends with the run's task, for the run to resume from."""
    folder = Path(run_dir)
    return {name: (folder / name).read_bytes() for name in record_names(folder)} if folder.exists() else {}


def write_records(records: dict[str, dict[str, bytes]], unit) -> None:
    """Write what a worker sent into the real run folders, each file atomically, summary.json last."""
    known = {job.run_dir for job in unit}
    for run_dir, files in records.items():
        if run_dir not in known:
            raise RuntimeError(f"a worker sent records for {run_dir}, which is not a run of its unit")
        for name, blob in files.items():
            if name != Path(name).name or not (name in RECORDS or name == SUMMARY or name.startswith("code-")):
                raise RuntimeError(f"a worker sent a file {name!r} for {run_dir}, which is not a run record")
            write_atomic(Path(run_dir) / name, blob)


@dataclasses.dataclass
class Flight:
    """A unit submitted to Ray: its jobs, the locks on their folders, how often it was tried, the node it started on."""

    unit: list
    held: ExitStack
    tries: int = 0
    node: str | None = None


def run_on_ray(units: list[list], bar, *, device: str, compile, address: str | None, workers: int | None) -> dict:
    """Train every unit as a Ray task and write the records they send back; returns what ran where:
    {"address", "nodes", "gpu", "runs_by_node", "failed": [{"run", "error"}]}. A failed unit does not stop the others.
    `compile(unit)`: whether to compile that unit's population (decided here, where the data is)."""
    ray = connect(address, workers)
    checkpoint_seconds = CHECKPOINT_SECONDS
    try:
        gpu = use_gpu(device, ray.cluster_resources().get("GPU", 0))
        task = ray.remote(train_unit).options(num_cpus=1, num_gpus=1 if gpu else 0, max_retries=0, num_returns="streaming")
        data = {}  # task spec -> its data in the object store, put once for every run that reads it
        for unit in units:
            for job in unit:
                if job.spec.task not in data:
                    data[job.spec.task] = ray.put(cached_data(job.spec.task))
        queue, flights, failed, runs_by_node = list(units), {}, [], {}

        def submit(flight: Flight) -> None:
            flight.tries += 1
            records = {job.run_dir: read_records(job.run_dir) for job in flight.unit}
            stream = task.remote(flight.unit, records, [data[job.spec.task] for job in flight.unit], "cuda" if gpu else "cpu",
                                 compile(flight.unit), checkpoint_seconds, sys.argv)
            flights[stream] = flight

        def capacity() -> int:
            """Units in flight at most: one per CPU (or GPU) of the cluster now, and one waiting, so that the
            records sent with the tasks stay few, while a node that joins gets work."""
            resources = ray.cluster_resources()
            return int(resources.get("GPU" if gpu else "CPU", 1)) + 1

        def finish(flight: Flight, summaries: list[dict] | None, error: str | None) -> None:
            flight.held.close()
            for k, job in enumerate(flight.unit):
                what = f"{job.spec.model.name} {job.spec.task.variant} {job.spec.task.name} seed {job.spec.train.seed}"
                if error is not None:
                    failed.append({"run": job.run_dir, "error": error})
                    bar.write(f"{what} failed: {error}")
                else:
                    runs_by_node[flight.node] = runs_by_node.get(flight.node, 0) + 1
                    if "diverged" in summaries[k]:
                        bar.write(f"{what} diverged and is left out: {summaries[k]['diverged']}")
            bar.finished(flight.unit)

        while queue or flights:
            while queue and len(flights) < capacity():
                unit = queue.pop(0)
                held = ExitStack()
                for job in unit:
                    held.enter_context(hold(job.run_dir))  # the driver writes these folders while the unit is out
                submit(Flight(unit, held))
            running = sum(len(f.unit) for f in flights.values() if f.node)
            bar.status(f"running {running}, failed {len(failed)}")
            [stream], _ = ray.wait(list(flights), num_returns=1)
            flight = flights.pop(stream)
            try:
                message = ray.get(next(stream))
            except StopIteration:
                finish(flight, None, "the task ended without a result")
                continue
            except ray.exceptions.RayTaskError as error:  # raised in memnet's code around the training
                finish(flight, None, str(error.cause or error).strip().splitlines()[-1])
                continue
            except ray.exceptions.RayError as error:  # the worker or its node died, or the task could not run
                reason = str(error).strip().splitlines()[0]
                if flight.tries <= RETRIES:
                    bar.write(f"{len(flight.unit)} run(s) lost their worker ({reason}); resuming them from the last "
                              f"checkpoint the driver holds (try {flight.tries + 1} of {RETRIES + 1})")
                    flight.node = None
                    submit(flight)
                else:
                    finish(flight, None, f"lost its worker {flight.tries} times; last: {reason}")
                continue
            write_records(message.get("records", {}), flight.unit)
            if "summaries" in message or "error" in message:
                finish(flight, message.get("summaries"), message.get("error"))
            else:
                flight.node = message.get("node", flight.node)
                flights[stream] = flight
        bar.status(f"running 0, failed {len(failed)}")
        nodes = [node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]]
        return {"address": address or "local", "nodes": nodes, "gpu": gpu, "runs_by_node": runs_by_node, "failed": failed}
    finally:
        ray.shutdown()  # a local instance stops; a cluster keeps running without this driver


def check_engine_options(engine: str, address: str | None, use_wandb: bool, device: str) -> None:
    """Options that only the Ray engine takes, or that it cannot honour: refused before any work."""
    if address is not None and engine != "ray":
        raise SpecError("--address: only with --engine ray")
    if engine == "ray":
        if use_wandb:
            raise SpecError("--wandb logs each run from its own process on this machine; use --engine local with --wandb")
        if device not in ("auto", "cpu") and not device.startswith("cuda"):
            raise SpecError(f"--device {device}: with --engine ray, one of auto, cpu, cuda (a GPU of the cluster's)")
        require_ray()
