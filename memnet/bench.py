"""The bAbI benchmark: a grid of runs, each one seed of one model on one task, resumable.

    results/<name>/bench.json                       the grid, the options every run shares, and the commands that ran it
    results/<name>/runs.jsonl.gz                    every finished run's records, added as it finishes (memnet.run_record)
    results/<name>/runs/<model>/<variant>-<mode>/<task>/seed-S/   one run directory per seed (see memnet.train): on disk, not in git
    results/<name>/summary.md, results.csv, results.json          tables made from the run records (memnet.tables.babi)

A model named without a preset (`memn2n`) starts from its default preset (memnet.presets.DEFAULT_PRESETS,
per mode); bench.json keeps the defaults the folder was made with, so a folder keeps its meaning when they
change (one made before models had default presets ran them from the spec's defaults, the paper's text).
A command without --models means the folder's models, or `memn2n` for a new folder.

A benchmark folder is its grid and its options: re-running the same command finishes what is
missing (a run in the pack is never redone, even where its folder is gone, as in a fresh clone; one
with only a checkpoint resumes from it),
a command with other options is refused, and `--extend` adds models, tasks, data, modes or seeds
with the same options. One command at a time holds the folder. On CPU independent runs go to
separate processes, one thread each (the models are too small to use more); on a GPU they run
one after another. `--engine ray` sends the same units to a Ray cluster instead (memnet.ray_engine).
"""

import functools
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

from memnet.locks import hold
from memnet.loop import resolve_device
from memnet.presets import DEFAULT_PRESETS
from memnet.progress import progress_bar
from memnet.records import environment, read_json, write_json
from memnet.run_record import PACK, RUNS, RunRecord, pack, read_pack
from memnet.spec import SpecError, differences, resolve
from memnet.tables.babi import write_report
from memnet.train import refuse_other_work
from memnet.units import Job, run_unit, start_worker, units_of, work, worth_compiling
from tasks.babi import parse_task_list, task_files

MODES = ("per-task", "joint")
ENGINES = ("population", "local", "ray")
GRID_KEYS = ("models", "tasks", "variants", "modes", "repeats")
DEFAULT_MODELS = ["memn2n"]  # a new benchmark's models when --models is not given


def parse_model_spec(text: str) -> tuple[str, str]:
    """'memn2n:pe-ls-rn' -> ('memn2n', 'pe-ls-rn'); 'lstm' -> ('lstm', '')."""
    model, _, preset = text.partition(":")
    return model, preset


def bare_presets(root: Path) -> dict:
    """model -> [per-task preset, joint preset] for a model the grid names without a preset: today's defaults for a
    new folder, else the ones bench.json kept; a folder made before they existed has none (the spec's defaults)."""
    if (root / "bench.json").exists():
        return read_json(root / "bench.json").get("default_presets", {})
    return {model: list(presets) for model, presets in DEFAULT_PRESETS.items()}


def make_grid(root: Path, grid: dict, options: dict, data_dir, bare: dict | None = None) -> tuple[list[Job], list[str]]:
    """Every (model, variant, mode, task, seed) run with its spec resolved and checked, and a message
    for each task whose files are missing. Raises SpecError before any work on a bad option.
    `bare`: the presets of models named without one (`bare_presets`; None: today's defaults)."""
    bare = {model: list(presets) for model, presets in DEFAULT_PRESETS.items()} if bare is None else bare
    jobs, missing, seen = [], [], set()
    for mode in grid["modes"]:
        if mode not in MODES:
            raise SpecError(f"modes: unknown mode {mode!r}; choose from {', '.join(MODES)}")
    if grid["repeats"] < 1:
        raise SpecError(f"repeats: must be at least 1, got {grid['repeats']}")
    wanted = parse_task_list(grid["tasks"])
    for variant in grid["variants"]:
        present = task_files(data_dir, variant)
        available = [task for task in wanted if {"train", "test"} <= set(present.get(task, {}))]
        missing += [f"{variant} task {task}: no train/test file" for task in wanted if task not in available]
        for text in grid["models"]:
            model, named = parse_model_spec(text)
            for mode in grid["modes"]:
                preset = named or bare.get(model, ["", ""])[MODES.index(mode)] or ""
                folder = f"{model}-{preset}" if preset else model  # memn2n:release and a bare memn2n share their runs
                groups = [str(task) for task in available] if mode == "per-task" else [",".join(map(str, available))]
                for group in groups:
                    task = {**options["task"], "name": f"babi:{group}", "variant": variant,
                            "data_dir": str(data_dir) if data_dir else None}
                    spec = resolve(model, preset or None, options["model"], options["train"], task)
                    label = f"task-{group}" if mode == "per-task" else "joint"
                    for seed in range(spec.train.seed, spec.train.seed + grid["repeats"]):
                        run_dir = root / RUNS / folder / f"{variant}-{mode}" / label / f"seed-{seed}"
                        if run_dir not in seen:
                            seen.add(run_dir)
                            identity = {"model": model, "preset": preset, "setting": folder, "variant": variant, "mode": mode,
                                        "tasks": [int(task) for task in group.split(",")], "seed": seed}
                            jobs.append(Job(spec.with_seed(seed), preset, str(run_dir), identity))
    return jobs, missing


def run_path(root: Path, job: Job) -> str:
    """A job's run folder relative to its benchmark folder: its key in the benchmark's pack."""
    return Path(job.run_dir).relative_to(root).as_posix()


def refuse_other_packed(root: Path, job: Job, packed: dict[str, RunRecord]) -> None:
    """Refuse, before any work, a grid whose run is packed with another spec (read-only)."""
    record = packed.get(run_path(root, job))
    if record is None:
        return
    changed = differences(record.config.get("spec", {}), job.spec.to_dict())
    if changed:
        raise SpecError(f"{root / PACK} holds {run_path(root, job)} with another spec ({'; '.join(changed)}); nothing was "
                        "changed. Start a new benchmark with another --name")


def merged_grid(stored: dict, asked: dict) -> dict:
    """`--extend`: the union of two grids (lists keep their first order; seeds: the larger count)."""
    union = lambda old, new: old + [item for item in new if item not in old]
    tasks = union(parse_task_list(stored["tasks"]), parse_task_list(asked["tasks"]))
    return {"models": union(stored["models"], asked["models"]), "tasks": ",".join(map(str, tasks)),
            "variants": union(stored["variants"], asked["variants"]), "modes": union(stored["modes"], asked["modes"]),
            "repeats": max(stored["repeats"], asked["repeats"])}


def settle_identity(root: Path, grid: dict, options: dict, extend: bool) -> dict:
    """The grid to run: this command's, checked against what the folder already is. Read-only.
    Models None (no --models given): the folder's models, or DEFAULT_MODELS for a new folder."""
    if not (root / "bench.json").exists():
        return {**grid, "models": grid["models"] or DEFAULT_MODELS}
    stored = read_json(root / "bench.json")
    if "grid" not in stored:
        raise SpecError(f"{root} was made by an older memnet whose runs hold no spec; start a new benchmark with another --name")
    changed = differences(stored["options"], options)
    if changed:
        raise SpecError(f"{root} is a benchmark with other options ({'; '.join(changed)}); nothing was changed. "
                        f"Start a new benchmark with another --name, or repeat its options: {stored['command_options']}")
    grid = {**grid, "models": grid["models"] or stored["grid"]["models"]}
    if stored["grid"] == grid:
        return grid
    if not extend:
        changed = [f"{key}: {stored['grid'][key]!r} -> {grid[key]!r}" for key in GRID_KEYS if stored["grid"][key] != grid[key]]
        raise SpecError(f"{root} is a benchmark of another grid ({'; '.join(changed)}); nothing was changed. "
                        "Add these runs to it with --extend, or start a new benchmark with another --name")
    return merged_grid(stored["grid"], grid)


def run_bench(name: str, grid: dict, options: dict, *, data_dir=None, results: str | Path = "results",
              workers: int | None = None, device: str = "auto", use_wandb: bool = False, extend: bool = False,
              command_options: str = "", engine: str = "population", compile: bool = True, address: str | None = None) -> Path:
    """Run (or finish) the grid, then write the tables; returns the benchmark folder.

    `grid`: models (MODEL[:PRESET] each), tasks, variants, modes, repeats. `options`: {"model": ...,
    "train": ..., "task": ...} given on the command line, applied on top of each model's preset.
    `engine`: "population" trains the runs that can share a population as one (memnet.population,
    compiled unless `compile` is off), the others alone; "local" trains every run alone, a process each;
    "ray" sends the population engine's units to the Ray cluster at `address` (None: a Ray instance on
    this machine), and the driver writes the records the workers send back (memnet.ray_engine).
    The records are the same either way (to float rounding), so either engine resumes the other's grid.
    """
    if engine not in ENGINES:
        raise SpecError(f"engine: unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    from memnet.ray_engine import check_engine_options

    check_engine_options(engine, address, use_wandb, device)
    if use_wandb:
        engine = "local"  # wandb logs each run's epochs from its own loop

    if workers is not None and workers < 1:
        raise SpecError(f"workers: must be at least 1, got {workers}")
    root = Path(results) / name
    grid = settle_identity(root, grid, options, extend)
    bare = bare_presets(root)
    jobs, missing = make_grid(root, grid, options, data_dir, bare)  # every spec checked before any work
    packed = read_pack(root)
    for job in jobs:
        refuse_other_packed(root, job, packed)
        if Path(job.run_dir).exists():
            refuse_other_work(Path(job.run_dir), job.spec, resume=True)
    with hold(root, "benchmark folder"):
        identities = {run_path(root, job): job.identity for job in jobs}
        pack(root, identities=identities)  # runs that finished after the last pack (a command stopped mid-unit)
        packed = read_pack(root)
        started = time.perf_counter()
        record = read_json(root / "bench.json") if (root / "bench.json").exists() else {"invocations": []}
        here = resolve_device("cpu" if engine == "ray" else device)  # ray: the units' device is the cluster's (memnet.ray_engine)
        gpu = here.type == "cuda"
        record.update({"name": name, "grid": grid, "options": options, "command_options": command_options, "missing": missing,
                       "default_presets": bare})
        record["invocations"].append(environment(here))
        write_json(root / "bench.json", record)
        for message in missing:
            print(f"skipping {message}", file=sys.stderr)
        if use_wandb:
            os.environ["WANDB_RUN_GROUP"] = name  # every run of the benchmark in one wandb group
        asked_workers, workers = workers, 1 if gpu else (workers or os.cpu_count() or 1)
        todo = [job for job in jobs if run_path(root, job) not in packed]
        units = units_of(todo, engine, workers)
        workers = min(workers, max(1, len(units)))
        threads = 1 if workers > 1 else torch.get_num_threads()
        # each unit's runs go into the benchmark's pack as the unit ends (one rewrite of the pack for all of them),
        # so a protocol cut short keeps every finished run
        bar = Progress(name, jobs, todo, on_finished=lambda unit: pack(root, [Path(job.run_dir) for job in unit], identities))
        run = functools.partial(run_unit, device="cuda" if gpu else "cpu", use_wandb=use_wandb, engine=engine)
        # on the CPU a unit compiles only where compiling pays for itself (memnet.units.worth_compiling)
        compiles = lambda unit: compile and (gpu or worth_compiling(unit))
        cluster = {}  # ray: where the units ran, and the runs that failed
        if engine == "ray" and units:
            from memnet.ray_engine import run_on_ray

            cluster = run_on_ray(units, bar, device=device, compile=compiles, address=address, workers=asked_workers)
        elif workers == 1:
            for unit in units:
                show(bar, unit, run(unit, compile=compiles(unit)))
        else:
            with ProcessPoolExecutor(max_workers=workers, initializer=start_worker, initargs=(threads,)) as pool:
                futures = {pool.submit(run, unit, compile=compiles(unit)): unit for unit in units}
                try:
                    for future in as_completed(futures):
                        show(bar, futures[future], future.result())
                except BaseException:  # Ctrl-C, SIGTERM, a worker killed: stop the others now, not after their runs
                    processes = list((pool._processes or {}).values())  # no public way; runs in flight resume from checkpoints
                    pool.shutdown(wait=False, cancel_futures=True)
                    for process in processes:
                        process.terminate()
                    raise
        bar.close()
        record["invocations"][-1].update(engine=engine, workers=workers, wall_seconds=round(time.perf_counter() - started, 1),
                                         runs_trained=len(todo),
                                         **({"ray": cluster} if cluster else {}))
        write_json(root / "bench.json", record)
        tables = write_report(root)
    print(tables)
    print(f"tables and run records in {root}")
    failed = cluster.get("failed", [])
    if failed:
        print(f"{len(failed)} run(s) failed and are not in the tables (errors above and in bench.json); "
              "the same command trains them again", file=sys.stderr)
    if use_wandb:
        log_table_to_wandb(name, root)
    return root


def show(bar: "Progress", unit: list[Job], summaries: list[dict]) -> None:
    for job, summary in zip(unit, summaries):
        what = f"{job.spec.model.name} {job.spec.task.variant} {job.spec.task.name} seed {job.spec.train.seed}"
        if "diverged" in summary:
            bar.write(f"{what} diverged and is left out: {summary['diverged']}")
        else:
            bar.status(f"{what}: test {summary['test_error']['all']}%")
    bar.finished(unit)


class Progress:
    """The grid's bar. It moves by each finished run's share of this invocation's work (`work`), not by runs:
    a population's runs end together and runs differ in cost, so a count of runs misjudges the time left. Its
    rate is the mean since the start (no smoothing), as work ends in bursts. The runs are counted beside it.
    `on_finished(unit)` is called as each unit's runs end (finished, diverged or failed)."""

    def __init__(self, name: str, jobs: list[Job], todo: list[Job], on_finished=lambda unit: None):
        self.on_finished = on_finished
        self.share = {job.run_dir: work([job]) for job in todo}
        self.runs, self.done, self.note = len(jobs), len(jobs) - len(todo), ""
        self.bar = progress_bar(sum(self.share.values()) or 1, name, initial=0 if todo else 1, smoothing=0,
                                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}")
        self.refresh()

    def finished(self, unit: list[Job]) -> None:
        self.on_finished(unit)
        self.done += len(unit)
        self.bar.update(sum(self.share[job.run_dir] for job in unit))
        self.refresh()

    def status(self, note: str) -> None:
        self.note = note
        self.refresh()

    def refresh(self) -> None:
        self.bar.set_postfix_str(f"{self.done}/{self.runs} runs" + (f"; {self.note}" if self.note else ""))

    def write(self, text: str) -> None:
        self.bar.write(text)

    def close(self) -> None:
        self.bar.close()


def log_table_to_wandb(name: str, root: Path) -> None:
    import wandb

    os.environ.setdefault("WANDB_MODE", "offline")
    rows = read_json(root / "results.json")["rows"]
    columns = sorted({key for row in rows for key in row})
    run = wandb.init(project="memnet", group=name, name=f"{name}-table", job_type="report", dir=str(root))
    run.log({"results": wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in rows])})
    run.finish()
