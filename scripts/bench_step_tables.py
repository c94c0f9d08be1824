"""The joint population's step on a table of each batch's own sentences against its step on every slot, side by
side in one process.

    python scripts/bench_step_tables.py --data-dir DIR     # writes results/speed/step-tables.json

Joint bAbI has 3,039 distinct training sentences, more than the 1,600 slots of a batch of 32, so a population reads
no whole sentence table (memnet.batches.StoryBatch.read_by). It builds one a step instead, of the batch's own
sentences (Population.step_tables). Here the population of the speed record's joint protocol (preset
rpe-ls-rn-joint, 10 seeds, as `memnet bench` trains it: results/speed/speed.json) runs its compiled training
step on the same random batches both ways, one thread, in interleaved rounds so that machine noise falls on both
alike; the table's time includes building it.
"""

import argparse
from pathlib import Path

import torch

from memnet import bench, units
from memnet.population import Member, Population
from memnet.records import environment, write_json

from bench_speed import interleaved_ms, step_arguments, timing_record  # this folder is on the path when a script runs

ROUNDS, STEPS = 4, 15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="the bAbI data dir (holding en/)")
    parser.add_argument("--out", default="results/speed/step-tables.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    jobs, _ = bench.make_grid(Path("/nonexistent"), {"models": ["memn2n:rpe-ls-rn-joint"], "tasks": "all", "variants": ["en"],
                                                     "modes": ["joint"], "repeats": 10}, {"model": {}, "train": {}, "task": {}},
                              args.data_dir)
    (unit,) = units.units_of(jobs, "population", workers=1)
    members = [Member(job.spec, Path("."), units.cached_data(job.spec.task)) for job in unit]
    rows = min(len(member.data.splits["train"]) for member in members)
    batches = torch.randint(rows, (STEPS, len(members), unit[0].spec.train.batch_size), generator=torch.Generator().manual_seed(0))
    ways, populations = {}, {}
    for way in ("step tables", "slots"):
        population = Population(members, torch.device("cpu"), compile=True)
        if way == "slots":
            population.whole_tables = None
        arguments = list(step_arguments(population))

        def round_of(population=population, arguments=arguments):
            for index in batches:  # the same real rows both ways, another batch each step
                population.step(*arguments[:4], index, *arguments[5:], population.step_tables(index))

        for _ in range(2):  # compiling, and warming up
            round_of()
        ways[way], populations[way] = round_of, population
    times = interleaved_ms(ways, ROUNDS, STEPS)
    record = {"environment": environment(torch.device("cpu")), "rounds": ROUNDS, "steps_a_round": STEPS,
              "population": {**timing_record(unit, times, "slots", "step tables"), "table_rows": populations["step tables"].table_rows}}
    write_json(Path(args.out), record)
    entry = record["population"]
    print(f"joint ({entry['members']} members): {entry['median_ms']} ms a step; speedup {entry['speedup']}x")


if __name__ == "__main__":
    main()
