"""Does our generator speak bAbI? Train MemN2N on generated questions only, test on the real test set.

    python scripts/faithfulness.py --data-dir DIR --bench results/babi-1k-memn2n --repeats 3

For every task on which MemN2N trained on the real 1k data reaches <= 5% test error (read from the
benchmark's records), train the same model (PE LS RN) on 1k generated questions, choose the best of
`--repeats` seeds by the *generated* validation split, and measure it on the *real* test set.
Writes results/faithfulness/summary.md, results.json and one run record per seed; resumable.
"""

import argparse
import dataclasses
from pathlib import Path

import torch

from memnet.presets import PRESETS
from memnet.records import environment, read_json, write_atomic, write_json
from memnet.train import TrainConfig, train_run
from tasks.generator import TASK_NAMES, GeneratorConfig, generate_babi
from tasks.registry import load

PASS = 5.0  # % test error: the paper's line between a solved and a failed task


def generated_train_real_test(task: int, generated: Path, real: Path):
    """Train/valid from the generator, test from the real files, all in the generated vocabulary."""
    data = load(f"babi:{task}", data_dir=generated, variant="en")
    real_data = load(f"babi:{task}", data_dir=real, variant="en", vocab=data.vocab)  # unseen real words -> <unk>, counted
    data.splits["test"], data.examples["test"] = real_data.splits["test"], real_data.examples["test"]
    data.name = f"babi:{task} (train and valid generated, test real)"
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="the real bAbI data dir (holding en/)")
    parser.add_argument("--bench", default="results/babi-1k-memn2n", help="benchmark of MemN2N on the real data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--out", default="results/faithfulness")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    rows = read_json(Path(args.bench) / "results.json")["rows"]
    real_error = {row["task"]: row["best"] for row in rows if row["group"].startswith("memn2n-pe-ls-rn en per-task")}
    tasks = sorted(task for task, error in real_error.items() if error <= PASS)
    generated = out / "generated-data"  # regenerated from the seed on every run; not committed
    generate_babi(generated, tasks, GeneratorConfig(questions=1000, seed=args.seed))
    preset = PRESETS["pe-ls-rn"]
    table = []
    for task in tasks:
        data = generated_train_real_test(task, generated, Path(args.data_dir))
        runs = []
        for seed in range(args.repeats):
            run_dir = out / "runs" / f"task-{task}" / f"seed-{seed}"
            if (run_dir / "summary.json").exists():
                runs.append(read_json(run_dir / "summary.json"))
                continue
            config = dataclasses.replace(TrainConfig(**preset["train"]), seed=seed)
            runs.append(train_run("memn2n", dict(preset["model"]), config, data, {"generator_seed": args.seed}, run_dir, resume=(run_dir / "checkpoint.pt").exists()))
        best = min(runs, key=lambda run: (run["valid_error"]["all"], run["seed"]))
        table.append({"task": task, "name": TASK_NAMES[task], "real_trained": real_error[task],
                      "generated_trained": best["test_error"]["all"], "generated_valid": best["valid_error"]["all"],
                      "best_seed": best["seed"], "all_seeds": [run["test_error"]["all"] for run in runs],
                      "passes": best["test_error"]["all"] <= PASS})
        print(table[-1])
    env = environment(torch.device("cpu"))
    write_json(out / "results.json", {"rows": table, "generator_seed": args.seed, "repeats": args.repeats, "environment": env})
    lines = ["# Faithfulness of the generator", "",
             "MemN2N (PE LS RN) trained on 1000 **generated** questions per task (best of "
             f"{args.repeats} seeds by generated validation error), tested on the **real** bAbI 1k test set, beside the same "
             f"model trained on the real data (best of 10, from `{args.bench}`). Only tasks the real-data model solves "
             f"(<= {PASS}% error) are listed.", "",
             "| task | real-trained test error % | generated-trained, real test error % | every seed | <= 5%? |", "|---|---|---|---|---|"]
    lines += [f"| {r['task']} {r['name']} | {r['real_trained']:.1f} | {r['generated_trained']:.1f} | "
              f"{', '.join(f'{e:.1f}' for e in r['all_seeds'])} | {'yes' if r['passes'] else '**no**'} |" for r in table]
    lines += ["", f"- command: `{env['command']}`", f"- code version: `{env['code_version']}`", f"- device: {env['device']}",
              f"- libraries: {env['libraries']}", "- every run's config, metrics and summary: `runs/`"]
    write_atomic(out / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
