"""Wall time of whole `memnet train` commands (start-up, data, 100 epochs, test), with the machine that ran them.

    python scripts/time_run.py --data-dir DIR --task babi:1 --repeats 3 --out results/timing

Run it on a quiet machine: other processes on the cores make every number slower. Each repeat is
a fresh process, as a user would run it; the table (NAME.md, made from the record NAME.json by
memnet.report) gives every time and their median.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from memnet.records import environment, read_json, write_atomic, write_json
from memnet.run_record import SUMMARY
from memnet.tables.timing import timing_markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--task", default="babi:1")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/timing")
    parser.add_argument("train_flags", nargs="*", help="extra flags for memnet train, after --")
    args = parser.parse_args()
    out = Path(args.out)
    runs = []
    for seed in range(args.repeats):
        with tempfile.TemporaryDirectory() as run_dir:
            command = [sys.executable, "-m", "memnet.cli", "train", "--task", args.task, "--data-dir", args.data_dir,
                       "--out", run_dir, "--seed", str(seed), "--quiet", *args.train_flags]
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            wall = time.perf_counter() - started
            summary = read_json(Path(run_dir) / SUMMARY)
            runs.append({"seed": seed, "wall_seconds": round(wall, 2), "training_seconds": summary["seconds"],
                         "epochs": summary["epochs"], "test_error": summary["test_error"]["all"]})
            print(runs[-1])
    env = environment(torch.device("cpu"))
    env["cpu_cores"] = os.cpu_count()
    env["load_average_after"] = os.getloadavg()
    record = {"task": args.task, "flags": args.train_flags, "runs": runs, "environment": env,
              "median_wall_seconds": statistics.median(run["wall_seconds"] for run in runs)}
    name = args.task.replace(":", "") + ("-" + "-".join(f.strip("-") for f in args.train_flags) if args.train_flags else "")
    write_json(out / f"{name}.json", record)
    table = timing_markdown(record)  # memnet.report makes it, so `memnet report results` remakes it from the record
    write_atomic(out / f"{name}.md", table)
    print(table)


if __name__ == "__main__":
    main()
