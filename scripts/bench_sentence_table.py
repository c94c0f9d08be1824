"""The population step on the sentence table against the step on every slot, side by side in one process.

    python scripts/bench_sentence_table.py --data-dir DIR     # writes results/speed/sentence-table.json

For each population the release 1k grid trains on 2 workers, the compiled training step runs on the same random
batches with the split's sentence table (memnet.batches.StoryBatch: each distinct sentence encoded once a step)
and without it (each slot's words encoded, as before the table), one thread, in interleaved rounds, so that
machine noise falls on both alike. A population whose table has as many sentences as a step has slots reads
the slots either way (StoryBatch.read_by), and says so.
"""

import argparse
import statistics
import time
from pathlib import Path

import torch

from memnet import bench, units
from memnet.population import Member, Population
from memnet.records import environment, write_json

from bench_speed import step_arguments  # this folder is on the path when a script runs

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
    times = {way: [] for way in steps}
    for _ in range(ROUNDS):
        for way, (population, args) in steps.items():
            started = time.perf_counter()
            for _ in range(STEPS):
                population.step(*args)
            times[way].append(1000 * (time.perf_counter() - started) / STEPS)
    median = {way: round(statistics.median(values), 2) for way, values in times.items()}
    table = steps["table"][0].splits["train"].sentences.shape[1]
    return {"tasks": sorted({job.spec.task.name for job in unit}, key=lambda name: (len(name), name)), "members": len(unit),
            "story_slots": steps["slots"][0].splits["train"].story.shape[2], "table_sentences": table,
            "reads_the_table": table > 0, "ms_a_step": {way: [round(ms, 2) for ms in values] for way, values in times.items()},
            "median_ms": median, "speedup": round(median["slots"] / median["table"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="the bAbI data dir (holding en/)")
    parser.add_argument("--out", default="results/speed/sentence-table.json")
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
        print(f"tasks {','.join(name.split(':')[-1] for name in unit['tasks'])} ({unit['members']} members, "
              f"{unit['table_sentences']} table sentences): {unit['median_ms']} ms a step; speedup {unit['speedup']}x")


if __name__ == "__main__":
    main()
