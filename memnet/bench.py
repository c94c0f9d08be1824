"""The bAbI benchmark: a grid of runs, each one seed of one model on one task, resumable.

    results/<name>/bench.json                       the grid and the commands that ran it
    results/<name>/runs/<model>/<variant>-<mode>/<task>/seed-S/   one run directory per seed (see memnet.train)
    results/<name>/summary.md, results.csv, results.json          tables made from the run records (memnet.report)

A run with a summary.json is finished and never redone; one with only a checkpoint resumes from
it. On CPU independent runs go to separate processes, one thread each (the models are too small
to use more); on a GPU they run one after another.
"""

import dataclasses
import functools
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from memnet.presets import PRESETS
from memnet.records import environment, read_json, write_json
from memnet.train import TrainConfig, resolve_device, train_run
from tasks.babi import parse_task_list, task_files

MODES = ("per-task", "joint")


@dataclass(frozen=True)
class Job:
    model: str  # a name in memnet.models.MODELS
    preset: str  # a name in memnet.presets.PRESETS, or "" for the model's defaults
    variant: str  # en, en-10k, ...
    mode: str  # "per-task" or "joint"
    tasks: str  # "2" per task; "1-20" joint
    seed: int
    run_dir: str

    @property
    def group(self) -> str:
        """What the tables compare: model, preset, data and mode; seeds and tasks vary inside."""
        return f"{self.model}{':' + self.preset if self.preset else ''} {self.variant} {self.mode}"


def parse_model_spec(spec: str) -> tuple[str, str]:
    """'memn2n:pe-ls-rn' -> ('memn2n', 'pe-ls-rn'); 'lstm' -> ('lstm', '')."""
    from memnet.models import MODELS

    model, _, preset = spec.partition(":")
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r} in {spec!r}; choose one of {', '.join(MODELS)}")
    if preset and preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} in {spec!r}; choose one of {', '.join(PRESETS)}")
    return model, preset


def make_grid(root: Path, models: list[str], tasks: str, variants: list[str], modes: list[str], repeats: int,
              data_dir) -> tuple[list[Job], list[str]]:
    """Every (model, variant, mode, task, seed) run, and a message for each task whose files are missing."""
    jobs, missing = [], []
    for variant in variants:
        present = task_files(data_dir, variant)
        wanted = parse_task_list(tasks)
        available = [task for task in wanted if {"train", "test"} <= set(present.get(task, {}))]
        missing += [f"{variant} task {task}: no train/test file" for task in wanted if task not in available]
        for spec in models:
            model, preset = parse_model_spec(spec)
            for mode in modes:
                if mode not in MODES:
                    raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
                groups = [str(task) for task in available] if mode == "per-task" else [",".join(map(str, available))]
                for group in groups:
                    label = f"task-{group}" if mode == "per-task" else "joint"
                    for seed in range(repeats):
                        run_dir = root / "runs" / spec.replace(":", "-") / f"{variant}-{mode}" / label / f"seed-{seed}"
                        jobs.append(Job(model, preset, variant, mode, group, seed, str(run_dir)))
    return jobs, missing


@functools.lru_cache(maxsize=4)
def cached_task(tasks: str, data_dir, variant: str):
    from tasks.registry import load

    return load(f"babi:{tasks}", data_dir=data_dir, variant=variant)


def run_job(job: Job, data_dir, overrides: dict, device: str, threads: int) -> dict:
    """Train one seed (in a worker process); returns its summary."""
    torch.set_num_threads(threads)
    preset = PRESETS.get(job.preset, {"model": {}, "train": {}})
    config = TrainConfig(**{**preset["train"], **overrides, "seed": job.seed, "device": device})
    data = cached_task(job.tasks, data_dir, job.variant)
    task_options = {"data_dir": str(data_dir) if data_dir else None, "variant": job.variant}
    resume = (Path(job.run_dir) / "checkpoint.pt").exists()
    return train_run(job.model, dict(preset["model"]), config, data, task_options, job.run_dir, resume=resume, progress=False)


def run_bench(name: str, models: list[str], tasks: str = "all", variants=("en",), modes=("per-task",), repeats: int = 1,
              data_dir=None, results: str | Path = "results", workers: int | None = None, overrides: dict | None = None,
              device: str = "auto", use_wandb: bool = False) -> Path:
    """Run (or finish) the grid, then write the tables; returns the benchmark folder."""
    from memnet.report import write_report

    root = Path(results) / name
    jobs, missing = make_grid(root, models, tasks, list(variants), list(modes), repeats, data_dir)
    for message in missing:
        print(f"skipping {message}", file=sys.stderr)
    overrides = dict(overrides or {})
    if use_wandb:
        overrides["wandb"] = True
        os.environ["WANDB_RUN_GROUP"] = name  # every run of the benchmark in one wandb group
    gpu = resolve_device(device).type == "cuda"
    workers = 1 if gpu else (workers or os.cpu_count() or 1)
    threads = 1 if workers > 1 else torch.get_num_threads()
    record = read_json(root / "bench.json") if (root / "bench.json").exists() else {"invocations": []}
    record.update({"name": name, "models": models, "tasks": tasks, "variants": list(variants), "modes": list(modes),
                   "repeats": repeats, "overrides": overrides, "missing": missing})
    record["invocations"].append(environment(resolve_device(device)))
    write_json(root / "bench.json", record)

    todo = [job for job in jobs if not (Path(job.run_dir) / "summary.json").exists()]
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=name, unit="run", dynamic_ncols=True)
    run = functools.partial(run_job, data_dir=data_dir, overrides=overrides, device="cuda" if gpu else "cpu", threads=threads)
    if workers == 1:
        for job in todo:
            show(bar, job, run(job))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(run, job): job for job in todo}
            for future in as_completed(futures):
                show(bar, futures[future], future.result())
    bar.close()
    tables = write_report(root)
    print(tables)
    print(f"tables and run records in {root}")
    if use_wandb:
        log_table_to_wandb(name, root)
    return root


def show(bar, job: Job, summary: dict) -> None:
    bar.set_postfix_str(f"{job.model} {job.variant} task {job.tasks if job.mode == 'per-task' else 'joint'} "
                        f"seed {job.seed}: test {summary['test_error']['all']}%")
    bar.update(1)


def log_table_to_wandb(name: str, root: Path) -> None:
    import wandb

    os.environ.setdefault("WANDB_MODE", "offline")
    rows = read_json(root / "results.json")["rows"]
    columns = sorted({key for row in rows for key in row})
    run = wandb.init(project="memnet", group=name, name=f"{name}-table", job_type="report", dir=str(root))
    run.log({"results": wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in rows])})
    run.finish()


def overrides_from(options: list[tuple[str, object]]) -> dict:
    """Training options given as KEY=VALUE, checked against TrainConfig's fields."""
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(key for key, _ in options if key not in fields)
    if unknown:
        raise ValueError(f"no training option {', '.join(unknown)}; the options are {', '.join(sorted(fields))}")
    return dict(options)
