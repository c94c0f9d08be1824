"""Compare tuning benchmarks on validation only, on one footing: each run's validation error at its last epoch and
at its best epoch (what `--keep best-valid` measures), from the runs' own records.

    python scripts/tuning_valid.py results/babi-1k-qrn-tune-*

A benchmark run with `--keep best-valid` reports its best epoch's validation error; one run without it, its last
epoch's. Both columns here are computed from every run's epoch lines, so settings trained either way compare fairly.
Per folder: the mean over tasks of the best run's validation error (what a setting is chosen on: best of N by
validation) and the mean over every run, each at the last epoch and at the best epoch. No test number is read.
"""

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from memnet.run_record import runs_of


def task_and_seed(run) -> tuple[str, int]:
    return str(run.identity["tasks"]), run.identity["seed"]


def valid_means(runs: list) -> dict[str, float]:
    """Mean validation error (%) over tasks of the best run, and over every run; at the last epoch and at the best."""
    by_task = defaultdict(list)  # task -> [(last epoch's valid error, best epoch's)]
    for run in runs:
        errors = [line["valid_error"] for line in run.metrics]
        by_task[str(run.identity["tasks"])].append((100 * errors[-1], 100 * min(errors)))
    mean = statistics.fmean
    return {"tasks": len(by_task), "runs": sum(len(runs) for runs in by_task.values()),
            "best run, last epoch": mean(min(last for last, _ in runs) for runs in by_task.values()),
            "every run, last epoch": mean(last for runs in by_task.values() for last, _ in runs),
            "best run, best epoch": mean(min(best for _, best in runs) for runs in by_task.values()),
            "every run, best epoch": mean(best for runs in by_task.values() for _, best in runs)}


def compare(runs_by_folder: dict[str, list]) -> list[tuple[str, dict[str, float]]]:
    """Each folder's `valid_means` over only the (task, seed) pairs that every folder ran."""
    shared = set.intersection(*({task_and_seed(run) for run in runs} for runs in runs_by_folder.values()))
    if not shared:
        raise ValueError("the folders share no (task, seed) pair: nothing to compare")
    return [(name, valid_means([run for run in runs if task_and_seed(run) in shared]))
            for name, runs in runs_by_folder.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="benchmark folders (results/NAME)")
    args = parser.parse_args()
    try:
        rows = compare({folder.name: list(runs_of(folder).values()) for folder in args.folders})
    except ValueError as error:
        raise SystemExit(str(error)) from None
    columns = list(rows[0][1])
    print("| benchmark | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, means in rows:
        cells = [f"{value:.1f}" if isinstance(value, float) else str(value) for value in means.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
