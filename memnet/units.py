"""The units of work of a benchmark and what they cost: which runs train together, in what order, and how a
unit is trained in a worker. The engines that run units (memnet.bench's process pool, memnet.ray_engine) both
import this module; neither imports the other for it.

    Job        one run of the grid: its spec, preset label, folder and identity
    units_of   jobs -> units: populations (memnet.population) where runs can share one, cut for the workers
    work       a unit's estimated cost (COMPILE_WORK, STEP_WORK: the one cost model)
    run_unit   train a unit in this process: one run alone, or a population
"""

import functools
import signal
from dataclasses import dataclass
from pathlib import Path

import torch

from memnet.loop import Diverged
from memnet.population import Member, population_key, train_population
from memnet.records import code_identity
from memnet.run_record import CONFIG
from memnet.spec import RunSpec
from memnet.train import load_data, train_run

@dataclass(frozen=True)
class Job:
    spec: RunSpec  # everything the run computes, seed included
    preset: str  # the preset the spec started from ("" for the spec's defaults): a label, not identity
    run_dir: str
    identity: dict | None = None  # what the run is in its grid: model, preset, setting, variant, mode, tasks, seed


@functools.lru_cache(maxsize=64)
def cached_data(task):
    return load_data(task)


def memory_bucket(slots: int) -> int:
    """Populations group tasks by memory size (16 or 64 slots), so that short stories are not padded
    to the longest task's 50 sentences, and a 20-task grid compiles a handful of graphs."""
    return 16 if slots <= 16 else 64


def units_of(jobs: list[Job], engine: str, workers: int = 1) -> list[list[Job]]:
    """What one worker trains at a time, costliest first: runs that can share a population
    (memnet.population), or one run.

    With several workers a population may be cut into parts, so that the workers finish together:
    one more part at a time, for as long as that shortens the longest worker's estimated time
    (`makespan`), each part counting its compile too. Members are ordered by their stories' shape
    first, so that a part pads to shapes near its own."""
    if engine == "local":
        return [[job] for job in jobs]
    populations, alone = {}, []
    for job in jobs:
        key = population_key(job.spec)
        if key is None:
            alone.append([job])
        else:
            bucket = memory_bucket(cached_data(job.spec.task).sizes.memory_slots)
            populations.setdefault((key, job.spec.task.variant, bucket), []).append(job)
    groups = list(populations.values())
    for group in groups:
        group.sort(key=lambda job: (shape_of(job), job.spec.task.name, job.spec.train.seed))
    parts = [1] * len(groups)
    cut = lambda counts: [g[len(g) * i // n : len(g) * (i + 1) // n] for g, n in zip(groups, counts) for i in range(n)]
    while workers > 1 and groups:
        tries = [[n + (k == j) for k, n in enumerate(parts)] for j in range(len(groups)) if parts[j] < len(groups[j])]
        best = min(tries, key=lambda counts: makespan(cut(counts), workers), default=None)
        if best is None or makespan(cut(best), workers) >= makespan(cut(parts), workers):
            break
        parts = best
    return sorted(cut(parts), key=work, reverse=True) + alone


def makespan(units: list[list[Job]], workers: int) -> float:
    """The longest worker's work when the units go, costliest first, each to the worker free first."""
    loads = [0.0] * workers
    for unit in sorted(units, key=work, reverse=True):
        loads[loads.index(min(loads))] += work(unit) + (COMPILE_WORK if worth_compiling(unit) else 0.0)
    return max(loads)


def shape_of(job: Job) -> tuple[int, int]:
    sizes = cached_data(job.spec.task).sizes
    return sizes.memory_slots, sizes.sentence_size


def sentences_of(job: Job) -> int:
    """The rows of a job's training sentence table (memnet.batches.StoryBatch)."""
    return len(cached_data(job.spec.task).splits["train"].sentences)


# A member-step's work on stories of `slots` x `words` (what `units_of` splits populations across workers by),
# in the units of MemN2N's lookups, slots x words. With the sentence table (`table`: its rows per question, where
# the population reads one), a question costs its share of the table's words and TABLE_SLOT_SHARE of its slots'
# (the gathers and the hops), fitted to the two 1k release populations that read a table: 49.65 ms a step on the
# table against 67.32 ms on the slots at 50 slots and 365 sentences (a share of 0.51), 9.59 against 12.15 ms at 9
# slots and 121 sentences (0.37); their mean (results/speed/sentence-table.json). The storyformer's sentences read each other: a rough fit
# to its compiled population steps on bAbI 1k, timed ad hoc on the 2-core CPU (about 20 ms a member-step at 50
# slots and 2-4 ms at 10-16, where MemN2N's took 1.6 ms at 50 x 6); the split needs only the ratios roughly right.
TABLE_SLOT_SHARE = 0.45
# The query-reduction network's decays are a slots x slots matrix a layer and direction: its compiled population of 10
# on bAbI 1k took 4.04 ms a member-step at 50 slots and 0.52 ms at 10 (with the sentence table; timed ad hoc on the
# 2-core CPU, one thread), which slots * (slots + 60) / 7 puts in the units of MemN2N's lookups.
# The Universal Transformer (preset ut's size, 4 steps) took 1.8-1.9 times the storyformer's eager forward and backward
# at 10, 20 and 50 slots (batch 32, one thread, timed ad hoc; its compiled population step not timed).
STEP_WORK = {"storyformer": lambda slots, words, table: slots * (slots + 50),
             "ut": lambda slots, words, table: 1.8 * slots * (slots + 50),
             "qrn": lambda slots, words, table: slots * (slots + 60) / 7}


def lookups(slots: int, words: int, table: float | None) -> float:
    return (table + TABLE_SLOT_SHARE * slots) * words if table is not None else slots * words


def step_work(name: str, slots: int, words: int, table: float | None = None) -> float:
    """A member-step's work for model `name` on stories of `slots` x `words` (see STEP_WORK)."""
    return STEP_WORK.get(name, lookups)(slots, words, table)


# A compile of a population's step and evaluation in `work`'s units: a 70-member release population's step took
# 29.5 s and its evaluation 6.4 s from cold on one thread of the 2-core CPU, at 8.3e-8 s a unit of work there (the
# 16-slot population: 189 s of training for 2.29e9 units). Cutting by it (four parts of the 1k grid) beat cutting by
# a larger cost (two parts): 263.7 s against 301.4 s (results/archive/babi-1k-release-table, results/archive/babi-1k-release-
# table-two-parts), both with the pack rewritten after every run, which the bench no longer does.
COMPILE_WORK = 5e8


def work(unit: list[Job]) -> float:
    """A population's training work, roughly: members x training questions x epochs x a member-step's work
    on the padded story (slots x words, which MemN2N's lookups scale with; `step_work`), read through the
    sentence table where the population reads one (as memnet.batches.StoryBatch.read_by decides)."""
    slots, words = (max(size) for size in zip(*(shape_of(job) for job in unit)))
    batch, sentences = unit[0].spec.train.batch_size, max(sentences_of(job) for job in unit)
    table = sentences / batch if sentences < batch * slots else None
    questions = max(len(cached_data(job.spec.task).splits["train"]) * job.spec.train.epochs for job in unit)
    return len(unit) * questions * step_work(unit[0].spec.model.name, slots, words, table)


# An eager population's seconds per unit of work over the compiled step's: 334.5 s against 54.9 s on the same
# work (results/speed/speed.json as of commit b3162095, before the sentence table, one thread; not measured again
# since: the current record's fast path itself trains one of its two units eagerly). A unit is compiled only where the time
# the compiled step saves is more than its compile costs (COMPILE_WORK), so a short job is never slower for it.
EAGER_SLOWDOWN = 6.0


def worth_compiling(unit: list[Job]) -> bool:
    return work(unit) * (EAGER_SLOWDOWN - 1) > COMPILE_WORK


def start_worker(threads: int) -> None:
    # Ctrl-C and SIGTERM are the driver's to handle: it stops the workers itself (their runs resume from checkpoints)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    torch.set_num_threads(threads)
    code_identity()  # the code this worker imported, before anything can change on disk


def run_job(job: Job, device: str, use_wandb: bool, data=None) -> dict:
    """Train one seed alone; returns its summary ({"diverged": why} when its loss blew up)."""
    resume = (Path(job.run_dir) / CONFIG).exists()
    try:
        return train_run(job.spec, job.run_dir, resume=resume, progress=False, device=device, use_wandb=use_wandb,
                         data=data or cached_data(job.spec.task), preset=job.preset or None, identity=job.identity)
    except Diverged as error:
        return {"diverged": str(error)}


def run_unit(unit: list[Job], device: str, use_wandb: bool, engine: str, compile: bool, data: list | None = None,
             checkpoint_seconds: float = 60.0) -> list[dict]:
    """Train a unit (in a worker process): one run alone, or a population; returns each run's summary.
    `data`: each job's TaskData when the caller has it (a Ray worker gets it from the driver)."""
    data = data or [cached_data(job.spec.task) for job in unit]
    if engine == "local" or population_key(unit[0].spec) is None:
        return [run_job(job, device, use_wandb, task_data) for job, task_data in zip(unit, data)]
    members = [Member(job.spec, Path(job.run_dir), task_data, job.preset or None, job.identity) for job, task_data in zip(unit, data)]
    return train_population(members, device=device, compile=compile, progress=False, checkpoint_seconds=checkpoint_seconds)
