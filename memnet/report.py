"""Tables from run records: best of N by validation error, mean ± std over N, published columns beside.

Reads `<root>/runs/<model>/<variant>-<mode>/<task-N | joint>/seed-S/{config,summary}.json` and writes
`<root>/summary.md`, `<root>/results.csv` and `<root>/results.json`. Nothing here is typed by hand:
rerun `python scripts/make_tables.py <root>` to remake them from the records.
"""

import csv
import io
import json
import statistics
from pathlib import Path

from memnet.published import PUBLISHED
from memnet.records import read_json, write_atomic, write_json
from tasks.babi import TASK_IDS

FAILED_ABOVE = 5.0  # a task "fails" when its test error is above 5% (the paper's convention)
SIZES = {"en": "1k", "en-valid": "1k", "en-10k": "10k", "en-valid-10k": "10k"}
# our presets that stand for a paper column under another name: the release's position weights are
# the paper's PE LS RN as the official code ran it
SAME_COLUMN = {"rpe-ls-rn": "pe-ls-rn", "rpe-ls-rn-joint": "pe-ls-rn-joint"}


def read_runs(root: Path) -> dict[str, list[dict]]:
    """group name -> finished runs, each {task, seed, valid, test, seconds, device}; one entry per task a run reports."""
    groups: dict[str, list[dict]] = {}
    for summary_path in sorted((root / "runs").glob("*/*/*/seed-*/summary.json")):
        run_dir = summary_path.parent
        spec, data, label = run_dir.parts[-4], run_dir.parts[-3], run_dir.parts[-2]
        mode = "joint" if data.endswith("-joint") else "per-task"
        variant = data.removesuffix("-" + mode)
        summary = read_json(summary_path)
        group = f"{spec} {variant} {mode}"
        tasks = [label.removeprefix("task-")] if mode == "per-task" else [t for t in summary["test_error"] if t != "all"]
        for task in tasks:
            key = "all" if mode == "per-task" else task
            groups.setdefault(group, []).append({
                "task": int(task), "seed": summary["seed"], "run": str(run_dir.relative_to(root)),
                "valid": summary["valid_error"].get(key, summary["valid_error"]["all"]),
                "select_by": summary["valid_error"]["all"],  # joint: one model for all tasks, chosen on all of valid
                "test": summary["test_error"][key], "seconds": summary["seconds"], "device": summary["device"],
            })
    return groups


def is_pooled(group: str) -> bool:
    """Whether a group ("spec variant mode") pools several settings (see `pooled`)."""
    return "+" in group.split(" ")[0]


def pooled(groups: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """MemN2N settings run side by side on the same data pooled into one group, "memn2n-A+B variant mode",
    so that the setting too is chosen per task by validation error, with the seed."""
    by_data: dict[tuple[str, str], list[str]] = {}
    for group in groups:
        spec, variant, mode = group.split(" ")
        if spec.startswith("memn2n-"):
            by_data.setdefault((variant, mode), []).append(group)
    return {"memn2n-" + "+".join(g.split(" ")[0].removeprefix("memn2n-") for g in members) + f" {variant} {mode}":
            [run for g in members for run in groups[g]] for (variant, mode), members in by_data.items() if len(members) > 1}


def published_column(group: str) -> str | None:
    """The paper's column that matches a group (same model setting and data size), if any."""
    spec, variant, mode = group.split(" ")
    size = SIZES.get(variant)
    model, _, preset = spec.partition("-")
    preset = preset.split("+")[0]  # a pooled group stands beside its first setting's column
    key = f"{size}/{SAME_COLUMN.get(preset, preset)}" if model == "memn2n" else f"{size}/{model}"
    return key if key in PUBLISHED else None


def aggregate(runs: list[dict]) -> dict[int, dict]:
    """Per task: the best run by validation error (ties: lower seed), and mean/std of test error over runs."""
    by_task: dict[int, list[dict]] = {}
    for run in runs:
        by_task.setdefault(run["task"], []).append(run)
    table = {}
    for task, task_runs in sorted(by_task.items()):
        best = min(task_runs, key=lambda run: (run["select_by"], run["seed"]))
        tests = [run["test"] for run in task_runs]
        table[task] = {"best": best["test"], "best_run": best["run"], "best_valid": best["valid"], "n": len(tests),
                       "mean": statistics.fmean(tests), "std": statistics.stdev(tests) if len(tests) > 1 else 0.0,
                       "seconds": sum(run["seconds"] for run in task_runs), "device": best["device"]}
    return table


def per_seed_totals(runs: list[dict]) -> list[tuple[float, int]]:
    """(mean test error, failed tasks) of each seed that finished every task of the group.

    A seed is one setting's seed (a pooled group holds a seed 0 of each of its settings)."""
    tasks = {run["task"] for run in runs}
    errors: dict[tuple[str, int], dict[int, float]] = {}
    for run in runs:
        errors.setdefault((Path(run["run"]).parts[1], run["seed"]), {})[run["task"]] = run["test"]
    return [(statistics.fmean(by_task.values()), sum(error > FAILED_ABOVE for error in by_task.values()))
            for by_task in errors.values() if set(by_task) == tasks]


def write_report(root: str | Path) -> str:
    """Write summary.md, results.csv and results.json for the benchmark in `root`; return the markdown."""
    root = Path(root)
    runs = read_runs(root)
    all_runs = {**runs, **pooled(runs)}
    groups = {group: aggregate(group_runs) for group, group_runs in all_runs.items()}
    totals = {group: per_seed_totals(group_runs) for group, group_runs in all_runs.items()}
    rows = [{"group": group, "task": task, **{k: v for k, v in cell.items()}}
            for group, table in groups.items() for task, cell in table.items()]
    write_json(root / "results.json", {"rows": rows, "published": {g: published_column(g) for g in groups},
                                       "per_seed": {g: [{"mean": mean, "failed": failed} for mean, failed in t] for g, t in totals.items()}})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["group", "task", "best", "best_valid", "mean", "std", "n", "seconds", "device", "best_run"])
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(root / "results.csv", buffer.getvalue())
    # each run once: a joint run reports every task, and a pooled group repeats its members' runs
    seconds = sum({run["run"]: run["seconds"] for group_runs in runs.values() for run in group_runs}.values())
    markdown = render(root, groups, totals, seconds)
    write_atomic(root / "summary.md", markdown)
    return markdown


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def seeds_line(groups: dict[str, dict[int, dict]], asked: int) -> str:
    """How many seeds finished per task, beside how many the last benchmark command asked for."""
    finished = sorted({cell["n"] for table in groups.values() for cell in table.values()})
    done = str(finished[0]) if len(finished) == 1 else f"{finished[0]} to {finished[-1]}"
    return (f"- seeds finished per task: {done}, numbered from 0 (the last command asked for {asked}; "
            "re-running it finishes any missing); every finished run's config, metrics and summary are under `runs/`")


def spread(values: list[float]) -> str:
    return f"{statistics.fmean(values):.1f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.1f}"


def render(root: Path, groups: dict[str, dict[int, dict]], totals: dict[str, list[tuple[float, int]]], seconds: float) -> str:
    bench = read_json(root / "bench.json") if (root / "bench.json").exists() else {}
    columns, published = [], []
    for group, table in groups.items():
        counts = sorted({cell["n"] for cell in table.values()})
        n = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"  # seeds may differ per task mid-benchmark
        columns.append((f"ours: {group}, best of {n} (by valid)", {t: c["best"] for t, c in table.items()}))
        spreads = {t: f"{c['mean']:.1f} ± {c['std']:.1f}" for t, c in table.items()}
        if counts[-1] > 1:  # a spread over one seed would only repeat it
            columns.append((f"ours: {group}, mean ± std over {n}", {**spreads, "totals": totals[group]}))
        if is_pooled(group):  # which setting won each task
            columns.append((f"ours: {group}, setting chosen", {t: Path(c["best_run"]).parts[1] for t, c in table.items()}))
        key = published_column(group)
        if key and key not in published:
            published.append(key)
    for key in published:
        columns.append((f"published: {key} (Sukhbaatar et al. 2015)", PUBLISHED[key]))
    lines = [f"# {root.name}", "", "Test error (%) on bAbI. Columns marked *published* are the paper's numbers, not ours.",
             "Ours: the run with the lowest validation error among N seeds (as the paper, which chose by training error),",
             "and the mean ± standard deviation over the N seeds (in the mean and failed rows: of each seed's",
             "mean error and failed-task count). A task fails when its error is above 5%.", ""]
    if any(map(is_pooled, groups)):
        lines[-1:-1] = ["A group named A+B pools the runs of settings A and B, so the setting too is chosen per task by validation error."]
    lines.append("| task | " + " | ".join(title for title, _ in columns) + " |")
    lines.append("|---" * (len(columns) + 1) + "|")
    tasks = sorted({task for table in groups.values() for task in table} & set(TASK_IDS))  # the tasks we ran
    for task in tasks:
        cells = [values.get(task) for _, values in columns]
        lines.append(f"| {task} | " + " | ".join(c if isinstance(c, str) else fmt(c) for c in cells) + " |")
    mean_row, failed_row = [], []
    for title, values in columns:
        numbers = [values[t] for t in tasks if isinstance(values.get(t), (int, float))]
        complete = len(numbers) == len(tasks)
        if title.startswith("published"):
            mean_row.append(fmt(values["mean"]))
            failed_row.append(str(values["failed"]))
            if len(tasks) < len(TASK_IDS) and complete:  # the paper again, over only the tasks we ran
                mean_row[-1] += f" ({fmt(statistics.fmean(numbers))} over these {len(tasks)})"
                failed_row[-1] += f" ({sum(number > FAILED_ABOVE for number in numbers)} over these {len(tasks)})"
        elif "mean ± std" in title:  # the spread of each seed's mean error and failed count
            seeds = values["totals"]
            count = "" if title.endswith(f"over {len(seeds)}") else f" ({len(seeds)} seed{'s' * (len(seeds) != 1)} with every task)"
            mean_row.append(spread([mean for mean, _ in seeds]) + count if seeds else "")
            failed_row.append(spread([failed for _, failed in seeds]) + count if seeds else "")
        elif not complete:
            mean_row.append(fmt(statistics.fmean(numbers)) + f" ({len(numbers)} tasks)" if numbers else "")
            failed_row.append("")
        else:
            mean_row.append(fmt(statistics.fmean(numbers)))
            failed_row.append(str(sum(number > FAILED_ABOVE for number in numbers)))
    lines.append("| **mean** | " + " | ".join(mean_row) + " |")
    lines.append("| **failed (> 5%)** | " + " | ".join(failed_row) + " |")
    lines += ["", "The published mean and failed counts are over all 20 tasks (in brackets, over only the tasks in the table); "
              "ours over the tasks in the table."]
    if bench.get("missing"):
        lines += ["", "Missing from the data, so not run: " + "; ".join(bench["missing"]) + "."]
    if bench.get("invocations"):
        last = bench["invocations"][-1]
        lines += ["", "## How these numbers were made", "",
                  f"- command: `{last['command']}`", f"- code version: `{last['code_version']}`",
                  f"- device of the runs: {', '.join(sorted({c['device'] for t in groups.values() for c in t.values()}))}",
                  f"- libraries: {json.dumps(last['libraries'])}, Python {last['python']}",
                  seeds_line({g: t for g, t in groups.items() if not is_pooled(g)}, bench.get("repeats", 1)),
                  f"- wall time of all runs: {seconds / 60:.1f} min of training"]
    return "\n".join(lines) + "\n"
