"""The table of a benchmark folder written by `memnet bench`: per setting the best of N seeds by validation and
the mean ± sd over them, settings run side by side pooled after them, and the paper's columns beside them.

    BENCH/runs.jsonl.gz (and any run folder not packed yet), BENCH/bench.json -> summary.md, results.csv, results.json
"""

import csv
import io
import json
import statistics
from pathlib import Path

from memnet.published import PUBLISHED, SOURCES
from memnet.records import read_json, write_atomic
from memnet.run_record import runs_of
from memnet.selection import RULE, best_of
from memnet.tables.common import FAILED_ABOVE, fmt, json_text, seed_count, spread
from tasks.babi import TASK_IDS

SIZES = {"en": "1k", "en-valid": "1k", "en-10k": "10k", "en-valid-10k": "10k"}
# our presets that stand for a paper column under another name: the release's position weights are
# the paper's PE LS RN as the official code ran it
SAME_COLUMN = {"rpe-ls-rn": "pe-ls-rn", "rpe-ls-rn-joint": "pe-ls-rn-joint", "release": "pe-ls-rn", "release-joint": "pe-ls-rn-joint"}
# how a pooled column chose: per task, or (joint training: one model answers every task) once
POOLED = {"per-task": "pooled: per-task choice among settings by validation",
          "joint": "pooled: one choice among settings by validation on all tasks"}

def read_runs(root: Path) -> dict[str, list[dict]]:
    """group name -> finished runs, each {task, seed, setting, valid, test, seconds, device}; one entry per task a run reports."""
    groups: dict[str, list[dict]] = {}
    for path, record in runs_of(root).items():
        identity, summary = record.identity, record.summary
        if identity is None:  # a run folder the benchmark has not packed yet, from before identities were recorded
            identity = identity_from_path(path)
        spec, variant, mode = identity["setting"], identity["variant"], identity["mode"]
        group = f"{spec} {variant} {mode}"
        tasks = [str(identity["tasks"][0])] if mode == "per-task" else [t for t in summary["test_error"] if t != "all"]
        for task in tasks:
            key = "all" if mode == "per-task" else task
            groups.setdefault(group, []).append({
                "task": int(task), "seed": summary["seed"], "setting": spec, "run": path,
                "valid": summary["valid_error"].get(key, summary["valid_error"]["all"]),
                "select_by": summary["valid_error"]["all"],  # joint: one model for all tasks, chosen on all of valid
                "test": summary["test_error"][key], "seconds": summary["seconds"], "device": summary["device"],
            })
    return groups


def identity_from_path(path: str) -> dict:
    """The identity of a run of `memnet bench` told by its folder (runs/SETTING/VARIANT-MODE/task-N|joint/seed-S), for
    records written before the identity was recorded: read once, when such records are packed (scripts/pack_results.py)."""
    _, setting, data, label, seed = Path(path).parts
    mode = "joint" if data.endswith("-joint") else "per-task"
    tasks = [int(task) for task in label.removeprefix("task-").split(",")] if mode == "per-task" else []
    return {"setting": setting, "variant": data.removesuffix("-" + mode), "mode": mode, "tasks": tasks,
            "seed": int(seed.removeprefix("seed-"))}


def is_pooled(group: str) -> bool:
    """Whether a group ("spec variant mode") pools several settings (see `pooled`)."""
    return "+" in group.split(" ")[0]


def pooled(groups: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """MemN2N settings run side by side on the same data pooled into one group, "memn2n-A+B variant mode",
    so that the setting too is chosen by validation error (`memnet.selection`)."""
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
    key = f"{size}/{SAME_COLUMN.get(preset, preset)}" if model == "memn2n" else f"{size}/{model}" + ("-joint" if mode == "joint" else "")
    return key if key in PUBLISHED else None


def aggregate(runs: list[dict]) -> dict[int, dict]:
    """Per task: the best run (`memnet.selection.best_of` on the validation error that chose it), and mean/std of test error over runs."""
    by_task: dict[int, list[dict]] = {}
    for run in runs:
        by_task.setdefault(run["task"], []).append(run)
    table = {}
    for task, task_runs in sorted(by_task.items()):
        best = best_of(task_runs, valid=lambda run: run["select_by"])
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
        errors.setdefault((run["setting"], run["seed"]), {})[run["task"]] = run["test"]
    return [(statistics.fmean(by_task.values()), sum(error > FAILED_ABOVE for error in by_task.values()))
            for by_task in errors.values() if set(by_task) == tasks]


def babi_tables(root: Path) -> dict[Path, str]:
    """summary.md, results.csv and results.json of the benchmark in `root`, from its run records."""
    runs = read_runs(root)
    all_runs = {**runs, **pooled(runs)}
    groups = {group: aggregate(group_runs) for group, group_runs in all_runs.items()}
    totals = {group: per_seed_totals(group_runs) for group, group_runs in all_runs.items()}
    rows = [{"group": group, "task": task, **cell} for group, table in groups.items() for task, cell in table.items()]
    results = {"rows": rows, "published": {g: published_column(g) for g in groups},
               "per_seed": {g: [{"mean": mean, "failed": failed} for mean, failed in t] for g, t in totals.items()},
               "selection": f"best: per task, the run with {RULE}" + ("; a joint run by its validation error over all tasks"
                                                                        if any(g.endswith(" joint") for g in groups) else "")}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["group", "task", "best", "best_valid", "mean", "std", "n", "seconds", "device", "best_run"])
    writer.writeheader()
    writer.writerows(rows)
    # each run once: a joint run reports every task, and a pooled group repeats its members' runs
    seconds = sum({run["run"]: run["seconds"] for group_runs in runs.values() for run in group_runs}.values())
    return {root / "summary.md": render(root, groups, totals, seconds), root / "results.csv": buffer.getvalue(),
            root / "results.json": json_text(results)}


def write_report(root: str | Path) -> str:
    """Write summary.md, results.csv and results.json for the benchmark in `root`; return the markdown."""
    root = Path(root)
    tables = babi_tables(root)
    for path, text in tables.items():
        write_atomic(path, text)
    return tables[root / "summary.md"]




def seeds_line(groups: dict[str, dict[int, dict]], asked: int) -> str:
    """How many seeds finished per task, beside how many the last benchmark command asked for."""
    finished = sorted({cell["n"] for table in groups.values() for cell in table.values()})
    done = str(finished[0]) if len(finished) == 1 else f"{finished[0]} to {finished[-1]}"
    return (f"- seeds finished per task: {done}, numbered from 0 (the last command asked for {asked}; "
            "re-running it finishes any missing); every finished run's config, metrics and summary are in `runs.jsonl.gz`")






def babi_columns(groups: dict[str, dict[int, dict]], totals: dict[str, list[tuple[float, int]]]) -> list[dict]:
    """The table's columns, each {title, kind, values}: every single setting's own columns first (best, spread),
    then the pooled groups (best, spread, setting chosen), then the paper's."""
    columns, published = [], []
    for group in sorted(groups, key=is_pooled):  # stable: settings in record order, pooled after them all
        table, mode = groups[group], group.split(" ")[2]
        n = seed_count([cell["n"] for cell in table.values()])
        label = f"; {POOLED[mode]}" if is_pooled(group) else ""
        columns.append({"title": f"ours: {group}, best of {n} (by valid{label})", "kind": "best",
                        "values": {t: c["best"] for t, c in table.items()}})
        if max(cell["n"] for cell in table.values()) > 1:  # a spread over one seed would only repeat it
            columns.append({"title": f"ours: {group}, mean ± std over {n}" + (" (pooled: every seed of every setting)" if label else ""),
                            "kind": "spread", "n": n, "totals": totals[group],
                            "values": {t: f"{c['mean']:.1f} ± {c['std']:.1f}" for t, c in table.items()}})
        if label:  # which setting won each task
            columns.append({"title": f"ours: {group}, setting chosen", "kind": "chosen",
                            "values": {t: Path(c["best_run"]).parts[1] for t, c in table.items()}})
        key = published_column(group)
        if key and key not in published:
            published.append(key)
    columns += [{"title": f"published: {key} ({SOURCES[key]})", "kind": "published", "values": PUBLISHED[key]}
                for key in published]
    return columns


def render(root: Path, groups: dict[str, dict[int, dict]], totals: dict[str, list[tuple[float, int]]], seconds: float) -> str:
    bench = read_json(root / "bench.json") if (root / "bench.json").exists() else {}
    columns = babi_columns(groups, totals)
    lines = [f"# {root.name}", "", "Test error (%) on bAbI. Columns marked *published* are the paper's numbers, not ours.",
             "Ours: the run with the lowest validation error among N seeds (as the paper, which chose by training error),",
             "and the mean ± standard deviation over the N seeds (in the mean and failed rows: of each seed's",
             "mean error and failed-task count). A task fails when its error is above 5%.", ""]
    if any(map(is_pooled, groups)):
        lines[-1:-1] = ["A column marked *pooled* (a group named A+B) holds the runs of settings A and B together, so the setting",
                        "too is chosen by validation error; it is a choice among settings, not one setting's result, and each",
                        "setting's own columns stand before it."]
    lines.append("| task | " + " | ".join(column["title"] for column in columns) + " |")
    lines.append("|---" * (len(columns) + 1) + "|")
    tasks = sorted({task for table in groups.values() for task in table} & set(TASK_IDS))  # the tasks we ran
    for task in tasks:
        cells = [column["values"].get(task) for column in columns]
        lines.append(f"| {task} | " + " | ".join(c if isinstance(c, str) else fmt(c) for c in cells) + " |")
    mean_row, failed_row = [], []
    for column in columns:
        values = column["values"]
        numbers = [values[t] for t in tasks if isinstance(values.get(t), (int, float))]
        complete = len(numbers) == len(tasks)
        if column["kind"] == "published":
            mean_row.append(f"{values['mean']:g}")  # as the paper prints it (4.55, not 4.5)
            failed_row.append(str(values["failed"]))
            if len(tasks) < len(TASK_IDS) and complete:  # the paper again, over only the tasks we ran
                mean_row[-1] += f" ({fmt(statistics.fmean(numbers))} over these {len(tasks)})"
                failed_row[-1] += f" ({sum(number > FAILED_ABOVE for number in numbers)} over these {len(tasks)})"
        elif column["kind"] == "spread":  # the spread of each seed's mean error and failed count
            seeds = column["totals"]
            count = "" if column["n"] == str(len(seeds)) else f" ({len(seeds)} seed{'s' * (len(seeds) != 1)} with every task)"
            mean_row.append(spread([mean for mean, _ in seeds]) + count if seeds else "")
            failed_row.append(spread([failed for _, failed in seeds]) + count if seeds else "")
        elif column["kind"] == "chosen":
            mean_row.append("")
            failed_row.append("")
        elif not complete:
            mean_row.append(fmt(statistics.fmean(numbers)) + f" ({len(numbers)} tasks)" if numbers else "")
            failed_row.append("")
        else:
            mean_row.append(fmt(statistics.fmean(numbers)))
            failed_row.append(str(sum(number > FAILED_ABOVE for number in numbers)))
    lines.append("| **mean** | " + " | ".join(mean_row) + " |")
    lines.append("| **failed (> 5%)** | " + " | ".join(failed_row) + " |")
    joint = any(group.endswith(" joint") for group in groups)
    lines += ["", f"Best run (memnet.selection): per task, the run with {RULE}"
              + ("; a joint run is one model for every task, chosen by its validation error over all tasks." if joint else "."),
              "", "The published mean and failed counts are over all 20 tasks (in brackets, over only the tasks in the table); "
              "ours over the tasks in the table."]
    if bench.get("missing"):
        lines += ["", "Missing from the data, so not run: " + "; ".join(bench["missing"]) + "."]
    if bench.get("invocations"):
        # the last command that trained runs: one that found every run finished does not relabel them
        trained = [call for call in bench["invocations"] if call.get("runs_trained", 1)]
        last = (trained or bench["invocations"])[-1]
        lines += ["", "## How these numbers were made", "",
                  f"- command: `{last['command']}`", f"- code version: `{last['code_version']}`",
                  f"- device of the runs: {', '.join(sorted({c['device'] for t in groups.values() for c in t.values()}))}",
                  f"- libraries: {json.dumps(last['libraries'])}, Python {last['python']}",
                  seeds_line({g: t for g, t in groups.items() if not is_pooled(g)}, bench.get("grid", bench).get("repeats", 1)),
                  f"- wall time of all runs: {seconds / 60:.1f} min of training"]
    return "\n".join(lines) + "\n"
