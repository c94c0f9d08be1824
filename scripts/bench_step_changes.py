"""The population step before and after stop 22's two changes, side by side in one process.

    python scripts/bench_step_changes.py --data-dir DIR     # writes results/speed/step-changes.json

The changes: MemN2N's tables stacked (rows, n, d) instead of side by side (rows, n d), and spectral
clipping's largest eigenvalue by repeated squaring instead of `torch.linalg.eigvalsh`. The earlier
versions are kept here, and only here, to time against. For each population the release 1k grid
trains on 2 workers, each variant's compiled step runs on the same random batches, one thread, in
interleaved rounds (before, stacked, stacked + squaring, ...), so that machine noise falls on all alike.
"""

import argparse
import statistics
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F

import memnet.population as population_module
from memnet import bench, units
from memnet.models.memn2n import MemN2N
from memnet.population import Member, Population, compiled, make_step
from memnet.records import environment, write_json
from memnet.loop import gradient_norms

from bench_speed import step_arguments  # this folder is on the path when a script runs

ROUNDS, STEPS = 4, 15


def side_by_side_embed(self, tables, bags):
    """MemN2N.embed before: the tables' columns side by side (rows, n d)."""
    words, weights = bags
    table = torch.cat([t.weight for t in tables], -1) if len(tables) > 1 else tables[0].weight
    rows = lambda looked_up: looked_up.view(*looked_up.shape[:-1], len(tables), -1)
    if torch.compiler.is_compiling():
        return sum(rows(F.embedding(words[..., j], table)) * weights[..., j, None, :] for j in range(words.shape[-1]))
    return (rows(F.embedding(words, table)) * weights[..., None, :]).sum(-3)


def eigensolver_norms(grads, measure):
    """train.gradient_norms before: the Gram matrix's largest eigenvalue from an eigensolver."""
    if measure == "spectral" and grads.dim() >= 3:
        flat = grads.flatten(2)
        gram = flat.mT @ flat if flat.shape[-2] >= flat.shape[-1] else flat @ flat.mT
        return torch.linalg.eigvalsh(gram)[..., -1].clamp(min=0).sqrt()
    return grads.flatten(1).norm(dim=1)


VARIANTS = {  # name -> (embed, gradient norms)
    "before": (side_by_side_embed, eigensolver_norms),
    "stacked_tables": (MemN2N.embed, eigensolver_norms),
    "stacked_tables_and_squaring": (MemN2N.embed, gradient_norms),
}


def use(variant: str) -> None:
    MemN2N.embed, population_module.gradient_norms = VARIANTS[variant]


def own_step(population: Population, k: int):
    """The population's step compiled under a code object of its own: dynamo keys its cache on the code
    and does not guard on the swapped functions, so each variant must not share one."""
    step = make_step(population.template, population.config.optimizer, population.config.clip_measure,
                     population.config.noise_rule, population.config.precision)
    code = step.__code__.replace(co_firstlineno=step.__code__.co_firstlineno + 1000 * (k + 1))
    return compiled(types.FunctionType(code, step.__globals__, step.__name__, None, step.__closure__), True)


def arguments(population: Population, index: torch.Tensor) -> tuple:
    """bench_speed's step arguments (noise drawn, softmax on, lr 0.01, clipping at 40) on the rows `index` (p, b)."""
    args = list(step_arguments(population))
    args[4] = index
    return tuple(args)


def compare(unit: list, data: dict) -> dict:
    members = [Member(job.spec, Path("."), data[job.spec.task]) for job in unit]
    generator = torch.Generator().manual_seed(0)
    rows = min(len(member.data.splits["train"]) for member in members)
    batches = [torch.randint(0, rows, (len(members), 32), generator=generator) for _ in range(STEPS)]
    steps = {}
    for k, variant in enumerate(VARIANTS):
        use(variant)
        population = Population(members, torch.device("cpu"), compile=True)
        steps[variant] = (population, own_step(population, k))
        steps[variant][1](*arguments(population, batches[0]))  # compile
    times = {variant: [] for variant in VARIANTS}
    for _ in range(ROUNDS):
        for variant, (population, step) in steps.items():
            use(variant)
            started = time.perf_counter()
            for index in batches:
                step(*arguments(population, index))
            times[variant].append(1000 * (time.perf_counter() - started) / STEPS)
    median = {variant: round(statistics.median(ms), 2) for variant, ms in times.items()}
    return {"tasks": sorted({job.spec.task.name for job in unit}, key=lambda name: (len(name), name)), "members": len(unit),
            "ms_a_step": {variant: [round(ms, 2) for ms in values] for variant, values in times.items()},
            "median_ms": median, "speedup": round(median["before"] / median["stacked_tables_and_squaring"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="the bAbI data dir (holding en/)")
    parser.add_argument("--out", default="results/speed/step-changes.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    jobs, _ = bench.make_grid(Path("/nonexistent"), {"models": ["memn2n:release"], "tasks": "all", "variants": ["en"],
                                                     "modes": ["per-task"], "repeats": 10}, {"model": {}, "train": {}, "task": {}},
                              args.data_dir)
    data = {job.spec.task: units.cached_data(job.spec.task) for job in jobs}
    record = {"environment": environment(torch.device("cpu")), "rounds": ROUNDS, "steps_a_round": STEPS,
              "populations": [compare(unit, data) for unit in units.units_of(jobs, "population", workers=2)]}
    write_json(Path(args.out), record)
    for unit in record["populations"]:
        print(f"tasks {','.join(name.split(':')[-1] for name in unit['tasks'])} ({unit['members']} members): "
              f"{unit['median_ms']} ms a step; speedup {unit['speedup']}x")


if __name__ == "__main__":
    main()
