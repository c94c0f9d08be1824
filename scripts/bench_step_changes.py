"""The population step before and after stop 22's two changes, side by side in one process.

    python scripts/bench_step_changes.py --data-dir DIR     # writes results/speed/step-changes.json

The changes: MemN2N's tables stacked (rows, n, d) instead of side by side (rows, n d), and spectral
clipping's largest eigenvalue by repeated squaring instead of `torch.linalg.eigvalsh`. The earlier
versions are kept here, and only here, to time against. For each population the release 1k grid
trains on 2 workers, each variant's compiled step runs on the same random batches, one thread, in
interleaved rounds (before, stacked, stacked + squaring, ...), so that machine noise falls on all alike.
"""

import types
from pathlib import Path

import torch
import torch.nn.functional as F

import memnet.population as population_module
from memnet.loop import gradient_norms
from memnet.models.memn2n import MemN2N
from memnet.population import Member, Population, compiled, make_step

from bench_speed import compare_release_populations, interleaved_ms, step_arguments, timing_record  # this folder is on the path when a script runs

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
    def round_of(variant, population, step):
        def run():
            use(variant)
            for index in batches:
                step(*arguments(population, index))
        return run

    times = interleaved_ms({variant: round_of(variant, *steps[variant]) for variant in steps}, ROUNDS, STEPS)
    return timing_record(unit, times, "before", "stacked_tables_and_squaring")


def main() -> None:
    compare_release_populations(__doc__, "results/speed/step-changes.json", compare, ROUNDS, STEPS)


if __name__ == "__main__":
    main()
