"""The faithfulness table (scripts/faithfulness.py): MemN2N trained on our generated tasks, tested on the real ones,
beside the same model trained on the real data.

    faithfulness.json, runs.jsonl.gz (runs/task-N/seed-S), and the real-data benchmark beside it -> summary.md, results.json
"""

from pathlib import Path

from memnet.records import read_json
from memnet.run_record import runs_of
from memnet.selection import RULE, best_of
from memnet.tables.babi import aggregate, read_runs
from memnet.tables.common import FAILED_ABOVE, json_text, seed_count

FAITHFULNESS_RECORD = "faithfulness.json"  # written by scripts/faithfulness.py: its arguments and every command
REAL_DATA_GROUP = "memn2n-pe-ls-rn en per-task"  # the real-data runs the faithfulness table stands beside

def real_data_errors(bench: Path) -> dict[int, dict]:
    """Per task, MemN2N PE LS RN on the real data in benchmark folder `bench`: `aggregate`'s cell (best, n, ...)."""
    groups = read_runs(Path(bench))
    if REAL_DATA_GROUP not in groups:
        raise FileNotFoundError(f"no {REAL_DATA_GROUP} runs under {Path(bench) / 'runs'}")
    return aggregate(groups[REAL_DATA_GROUP])


def faithfulness_tables(root: Path) -> dict[Path, str]:
    """summary.md and results.json of a faithfulness folder, from faithfulness.json, its runs and the real-data benchmark's runs."""
    from tasks.generator import TASK_NAMES

    record = read_json(root / FAITHFULNESS_RECORD)
    bench = root.parent / Path(record["bench"]).name  # scripts/faithfulness.py keeps --bench beside --out
    real = real_data_errors(bench)
    runs: dict[int, list[dict]] = {}
    for path, run in runs_of(root).items():  # runs/task-N/seed-S
        summary = run.summary
        runs.setdefault(int(Path(path).parts[1].removeprefix("task-")), []).append(
            {"seed": summary["seed"], "valid": summary["valid_error"]["all"], "test": summary["test_error"]["all"]})
    rows = []
    for task, task_runs in sorted(runs.items()):
        best = best_of(task_runs)
        rows.append({"task": task, "name": TASK_NAMES[task], "real_trained": real[task]["best"],
                     "generated_trained": best["test"], "generated_valid": best["valid"], "best_seed": best["seed"],
                     "all_seeds": [run["test"] for run in sorted(task_runs, key=lambda run: run["seed"])],
                     "passes": best["test"] <= FAILED_ABOVE})
    env = record["invocations"][-1]
    results = {"rows": rows, "generator_seed": record["generator_seed"], "repeats": record["repeats"], "environment": env}
    lines = ["# Faithfulness of the generator", "",
             "MemN2N (PE LS RN) trained on 1000 **generated** questions per task (best of "
             f"{seed_count([len(r) for r in runs.values()])} seeds by generated validation error), tested on the **real** "
             "bAbI 1k test set, beside the same model trained on the real data (best of "
             f"{seed_count([real[task]['n'] for task in runs])}, from `{record['bench']}`). Only tasks the real-data model "
             f"solves (<= {FAILED_ABOVE}% error) are listed.", "",
             "| task | real-trained test error % | generated-trained, real test error % | every seed | <= 5%? |", "|---|---|---|---|---|"]
    lines += [f"| {r['task']} {r['name']} | {r['real_trained']:.1f} | {r['generated_trained']:.1f} | "
              f"{', '.join(f'{e:.1f}' for e in r['all_seeds'])} | {'yes' if r['passes'] else '**no**'} |" for r in rows]
    lines += ["", f"Best run (memnet.selection): per task, the seed with {RULE}; the validation split is generated, "
                  "the real-trained column chose the same way on the real validation split.",
              "", f"- command: `{env['command']}`", f"- code version: `{env['code_version']}`", f"- device: {env['device']}",
              f"- libraries: {env['libraries']}", "- every run's config, metrics and summary: `runs.jsonl.gz`"]
    return {root / "summary.md": "\n".join(lines) + "\n", root / "results.json": json_text(results)}
