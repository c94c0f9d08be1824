"""The population step on the sentence table against the step on every slot, side by side in one process.

    python scripts/bench_sentence_table.py --data-dir DIR     # writes results/speed/sentence-table.json

For each population the release 1k grid trains on 2 workers, the compiled training step runs on the same random
batches with the split's sentence table (memnet.batches.StoryBatch: each distinct sentence encoded once a step)
and without it (each slot's words encoded, as before the table), one thread, in interleaved rounds, so that
machine noise falls on both alike. A population whose table has as many sentences as a step has slots reads
the slots either way (StoryBatch.read_by), and says so.
"""

from pathlib import Path

import torch

from memnet.population import Member, Population

from bench_speed import compare_release_populations, interleaved_ms, step_arguments, timing_record  # this folder is on the path when a script runs

ROUNDS, STEPS = 4, 15


def compare(unit: list, data: dict) -> dict:
    """Milliseconds a step of `unit`'s compiled population, on the table and on the slots."""
    members = [Member(job.spec, Path("."), data[job.spec.task]) for job in unit]
    steps = {}
    for way in ("table", "slots"):
        population = Population(members, torch.device("cpu"), compile=True)
        if way == "slots":
            population.splits["train"] = population.splits["train"].without_table()
        args = list(step_arguments(population))
        rows = min(len(member.data.splits["train"]) for member in members)
        args[4] = torch.randint(rows, args[4].shape, generator=torch.Generator().manual_seed(0))  # real rows, the same for both
        for _ in range(3):  # compiling, and warming up
            population.step(*args)
        steps[way] = (population, args)
    round_of = lambda population, args: lambda: [population.step(*args) for _ in range(STEPS)]
    times = interleaved_ms({way: round_of(*steps[way]) for way in steps}, ROUNDS, STEPS)
    table = steps["table"][0].splits["train"].sentences.shape[1]
    return {**timing_record(unit, times, "slots", "table"), "story_slots": steps["slots"][0].splits["train"].story.shape[2],
            "table_sentences": table, "reads_the_table": table > 0}


def main() -> None:
    compare_release_populations(__doc__, "results/speed/sentence-table.json", compare, ROUNDS, STEPS)


if __name__ == "__main__":
    main()
