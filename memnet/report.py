"""Every table under results/ made from its records: one builder per kind of results folder.

    memnet report results                  rebuild every table under results/ from the records
    memnet report results --check          write nothing; exit 1 naming each table that differs from its records
    memnet report results/babi-1k-memn2n   one folder

The kinds (`BUILDERS`; `kind_of` tells a folder's kind from the records it holds):

    babi          runs/<model-spec>/<variant>-<mode>/<task-N | joint>/seed-S/summary.json, and bench.json
                  -> summary.md, results.csv, results.json: per setting the best of N seeds by validation and
                  the mean ± std over them, settings run side by side pooled after them, the paper's columns beside
    faithfulness  faithfulness.json and runs/task-N/seed-S/summary.json (scripts/faithfulness.py), and the runs of
                  the real-data benchmark beside it -> summary.md, results.json
    sequences     sequences.json and runs/{temporal,echo,seq2seq}/.../seed-S/ (scripts/bench_sequences.py): summary.json,
                  metrics.jsonl (temporal: first epoch at 99% valid), by_length.json (seq2seq: exact match per length)
                  -> temporal_order, echo, seq2seq (.md and .json)
    timing        NAME.json written by scripts/time_run.py -> NAME.md
    speed         speed.json written by scripts/bench_speed.py -> summary.md
    ablation      ablation.json and one babi benchmark per arm (scripts/release_ablation.py), read against the
                  baseline benchmark beside it -> each arm's tables, and summary.md, results.json over the arms

A builder reads summary.json files (and a run's metrics.jsonl or the numbers its script wrote beside them),
the script's record and the folder layout, never config.json (its shape belongs to the training code),
and returns {path: text} without writing, so `--check` and a rebuild see the same tables. The best
run is always chosen by `memnet.selection.best_of`. Another kind of folder is one more function from
a folder to {path: text}, an entry in `BUILDERS` and a line in `kind_of`.
"""

import argparse
import csv
import io
import json
import statistics
import sys
from pathlib import Path

from memnet.published import PUBLISHED
from memnet.records import read_json, read_jsonl, write_atomic
from memnet.selection import RULE, best_of
from tasks.babi import TASK_IDS

FAILED_ABOVE = 5.0  # a task "fails" when its test error is above 5% (the paper's convention)
SIZES = {"en": "1k", "en-valid": "1k", "en-10k": "10k", "en-valid-10k": "10k"}
# our presets that stand for a paper column under another name: the release's position weights are
# the paper's PE LS RN as the official code ran it
SAME_COLUMN = {"rpe-ls-rn": "pe-ls-rn", "rpe-ls-rn-joint": "pe-ls-rn-joint", "release": "pe-ls-rn", "release-joint": "pe-ls-rn-joint"}
# how a pooled column chose: per task, or (joint training: one model answers every task) once
POOLED = {"per-task": "pooled: per-task choice among settings by validation",
          "joint": "pooled: one choice among settings by validation on all tasks"}
FAITHFULNESS_RECORD = "faithfulness.json"  # written by scripts/faithfulness.py: its arguments and every command
REAL_DATA_GROUP = "memn2n-pe-ls-rn en per-task"  # the real-data runs the faithfulness table stands beside
SEQUENCES_RECORD = "sequences.json"  # written by scripts/bench_sequences.py: its plan and every command that ran it


def json_text(obj) -> str:
    """JSON as memnet.records.write_json writes it."""
    return json.dumps(obj, indent=2, sort_keys=False) + "\n"


# ---- babi: benchmark folders written by memnet bench -------------------------------------------------------------

def read_runs(root: Path) -> dict[str, list[dict]]:
    """group name -> finished runs, each {task, seed, setting, valid, test, seconds, device}; one entry per task a run reports."""
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
                "task": int(task), "seed": summary["seed"], "setting": spec, "run": str(run_dir.relative_to(root)),
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
    key = f"{size}/{SAME_COLUMN.get(preset, preset)}" if model == "memn2n" else f"{size}/{model}"
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


def seed_count(counts: list[int]) -> str:
    """"5", or "3–5" where tasks finished different numbers of seeds (mid-benchmark)."""
    counts = sorted(set(counts))
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"


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
    columns += [{"title": f"published: {key} (Sukhbaatar et al. 2015)", "kind": "published", "values": PUBLISHED[key]}
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
            mean_row.append(fmt(values["mean"]))
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
        last = bench["invocations"][-1]
        lines += ["", "## How these numbers were made", "",
                  f"- command: `{last['command']}`", f"- code version: `{last['code_version']}`",
                  f"- device of the runs: {', '.join(sorted({c['device'] for t in groups.values() for c in t.values()}))}",
                  f"- libraries: {json.dumps(last['libraries'])}, Python {last['python']}",
                  seeds_line({g: t for g, t in groups.items() if not is_pooled(g)}, bench.get("grid", bench).get("repeats", 1)),
                  f"- wall time of all runs: {seconds / 60:.1f} min of training"]
    return "\n".join(lines) + "\n"


# ---- faithfulness: MemN2N trained on generated tasks, tested on the real ones (scripts/faithfulness.py) -------------

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
    for summary_path in (root / "runs").glob("task-*/seed-*/summary.json"):
        summary = read_json(summary_path)
        runs.setdefault(int(summary_path.parent.parent.name.removeprefix("task-")), []).append(
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
              f"- libraries: {env['libraries']}", "- every run's config, metrics and summary: `runs/`"]
    return {root / "summary.md": "\n".join(lines) + "\n", root / "results.json": json_text(results)}


# ---- timing: wall time of whole memnet train commands (scripts/time_run.py) ----------------------------------------

def is_timing_record(path: Path) -> bool:
    try:
        record = read_json(path)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and {"task", "flags", "runs", "environment", "median_wall_seconds"} <= record.keys()


def timing_markdown(record: dict) -> str:
    """The table of one scripts/time_run.py record."""
    env = record["environment"]
    lines = [f"# Wall time of `memnet train --task {record['task']} {' '.join(record['flags'])}`", "",
             f"Device: {env['device']}, {env['cpu_cores']} cores; code {env['code_version']}; torch {env['libraries']['torch']}.",
             f"Command: `{env['command']}`. Load average after the runs: {', '.join(f'{x:.2f}' for x in env['load_average_after'])}.", "",
             "| seed | wall s (whole command) | training s | epochs | test error % |", "|---|---|---|---|---|"]
    lines += [f"| {r['seed']} | {r['wall_seconds']} | {r['training_seconds']} | {r['epochs']} | {r['test_error']} |" for r in record["runs"]]
    lines += ["", f"Median wall time: **{record['median_wall_seconds']} s**."]
    return "\n".join(lines) + "\n"


def timing_tables(root: Path) -> dict[Path, str]:
    """NAME.md beside each timing record NAME.json."""
    return {path.with_suffix(".md"): timing_markdown(read_json(path)) for path in sorted(root.glob("*.json")) if is_timing_record(path)}


# ---- sequences: temporal order, echo and seq2seq (scripts/bench_sequences.py) -------------------------------------

def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def markdown_table(columns: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]) + "\n"


def read_metrics(run_dir: Path) -> list[dict]:
    return read_jsonl(run_dir / "metrics.jsonl")  # a damaged line is named, with what to do


def sequences_header(title: str, part: str, record: dict, summaries: list[dict]) -> tuple[str, list[dict]]:
    """The title and the lines under it: which commands trained the part's runs, with what code, on what device,
    and where the records are; and those commands' records, for the json."""
    made = [call for call in record["invocations"] if call["trained"].get(part)] or record["invocations"][-1:]
    last = made[-1]
    libraries = ", ".join(f"{name} {version}" for name, version in last["libraries"].items() if version)
    devices = ", ".join(sorted({summary["device"] for summary in summaries}))
    seconds = sum(summary["seconds"] for summary in summaries)
    text = (f"# {title}\n\nRuns by `scripts/bench_sequences.py` (command `{last['command']}`), code "
            f"{' and '.join(dict.fromkeys(call['code_version'] for call in made))}, {devices}, {libraries}; {len(summaries)} runs, "
            f"{seconds:.1f} s of training. Every run's config, metrics and summary are under `runs/{part}/`; "
            "this table is made from them by `memnet report`.\n\n")
    return text, made


def seeds_text(seeds: int) -> str:
    return "seed 0" if seeds == 1 else f"seeds 0..{seeds - 1}"


def missing_line(found: int, planned: int) -> str:
    if found == planned:
        return ""
    return f"\nNot trained yet: {planned - found} of {planned} runs of the plan (re-running the script trains them).\n"


def temporal_tables(root: Path, settings: dict, record: dict) -> dict[Path, str]:
    """temporal_order.md and .json: test accuracy per level and cell, mean ± std over seeds; first epoch at 99% valid."""
    from tasks.temporal_order import LEVELS

    rows, summaries, planned = [], [], 0
    for row in settings["rows"]:
        models = {}
        for column, model in settings["columns"].items():
            runs = []
            for seed in range(row["seeds"]):
                run_dir = root / "runs" / "temporal" / row["name"] / column / f"seed-{seed}"
                planned += 1
                if not (run_dir / "summary.json").exists():
                    continue
                summary, metrics = read_json(run_dir / "summary.json"), read_metrics(run_dir)
                summaries.append(summary)
                runs.append({"seed": seed, "run": str(run_dir.relative_to(root)), "test_accuracy": round(100 - summary["test_error"]["all"], 2),
                             "first_epoch_valid_99": next((m["epoch"] + 1 for m in metrics if m["valid_error"] <= 0.01), None),
                             "valid_accuracy": [round(100 * (1 - m["valid_error"]), 1) for m in metrics], "seconds": summary["seconds"]})
            models[column] = {"title": model["title"], "runs": runs}
        rows.append({**row, "length": list(LEVELS[row["level"]][0]), "models": models})
    md, made = sequences_header("Temporal order: test accuracy (%)", "temporal", record, summaries)
    train, columns = settings["train"], settings["columns"]
    md += ("Hochreiter & Schmidhuber (1997) exp. 6a, levels of the NYU Deep Learning course (week 6). Adam, lr "
           f"{train['lr']}, batch {train['batch_size']}, summed cross-entropy (memnet.train). Training seeds 0..n-1 per row, "
           "data seed 0; test set: 1000 sequences from a fixed seed. Mean ± std over seeds. `lstm + chrono init`: "
           "forget/input-gate biases from Tallec & Ollivier (2018) with the level's longest length as horizon; `lstm`: forget bias 1.\n\n")
    md += markdown_table(["level", "length", "hidden", "train", "epochs", "seeds"] + [c["title"] for c in columns.values()], [
        [r["label"], "{}-{}".format(*r["length"]), r["hidden"], r["train"], r["epochs"], r["seeds"]]
        + [mean_std([run["test_accuracy"] for run in r["models"][c]["runs"]]) for c in columns] for r in rows])
    md += "\nFirst epoch with validation accuracy ≥ 99%, per seed (– = never):\n\n"
    md += markdown_table(["level"] + [c["title"] for c in columns.values()], [
        [r["label"]] + [", ".join(str(run["first_epoch_valid_99"] or "–") for run in r["models"][c]["runs"]) for c in columns] for r in rows])
    md += missing_line(len(summaries), planned)
    md += "\nPublished, not ours (NYU Deep Learning course, week 6): on EASY after 10 epochs a 4-unit RNN ~50-59%, a 4-unit LSTM 100%.\n"
    results = {"rows": rows, "settings": settings, "runs": len(summaries), "planned": planned, "made_by": made}
    return {root / "temporal_order.md": md, root / "temporal_order.json": json_text(results)}


def echo_tables(root: Path, settings: dict, record: dict) -> dict[Path, str]:
    """echo.md and .json: test accuracy after the last epoch, per delay and cell."""
    rows, summaries = [], []
    for delay in settings["delays"]:
        row = {"echo_step": delay}
        for cell in settings["cells"]:
            row[cell] = []
            for seed in range(settings["seeds"]):
                run_dir = root / "runs" / "echo" / cell.lower() / f"delay-{delay}" / f"seed-{seed}"
                if (run_dir / "summary.json").exists():
                    summaries.append(read_json(run_dir / "summary.json"))
                    row[cell].append({"run": str(run_dir.relative_to(root)), **summaries[-1]})
        rows.append(row)
    md, made = sequences_header("Echo: test accuracy (%) by delay", "echo", record, summaries)
    config = settings["config"]
    md += (f"Bits echoed `echo_step` steps late; {config['streams']} streams of {config['steps']} steps per epoch, chunks of "
           f"{config['chunk']} steps, state carried and detached (truncated BPTT); {config['hidden']} hidden units, Adam lr "
           f"{config['lr']}, {config['epochs']} epochs; accuracy on a held-out stream after the last epoch (chance = 50%); "
           f"{seeds_text(settings['seeds'])}.\n\n")
    md += markdown_table(["delay"] + settings["cells"], [[r["echo_step"]] + [mean_std([run["test_accuracy"] for run in r[c]])
                                                                            for c in settings["cells"]] for r in rows])
    planned = len(settings["delays"]) * len(settings["cells"]) * settings["seeds"]
    md += missing_line(len(summaries), planned)
    results = {"rows": rows, "settings": settings, "runs": len(summaries), "planned": planned, "made_by": made}
    return {root / "echo.md": md, root / "echo.json": json_text(results)}


def seq2seq_rows(settings: dict) -> list[dict]:
    """The rows of the seq2seq plan, each {task, attention, symbols, spec, seeds, folder, preset, model, train}: every
    task with every attention of the plan, then (key "length", issue 32) every task with every attention of the
    length preset at each alphabet size. A row's seed S lives in `folder`/seed-S; at the default 10 symbols the
    folder is runs/seq2seq/<task>/<attention>, else runs/seq2seq/<task>-symbols-<k>/<attention>."""
    rows = [{"task": task, "attention": attention, "symbols": 10, "spec": settings["spec"], "seeds": settings["seeds"],
             "folder": f"runs/seq2seq/{task}/{attention}", "preset": None, "model": settings["model"], "train": settings["train"]}
            for task in settings["tasks"] for attention in settings["attentions"]]
    length = settings.get("length")
    for symbols in length["symbols"] if length else []:
        spec, suffix = (settings["spec"], "") if symbols == 10 else (f"{settings['spec']},symbols={symbols}", f"-symbols-{symbols}")
        rows += [{"task": task, "attention": attention, "symbols": symbols, "spec": spec, "seeds": length["seeds"],
                  "folder": f"runs/seq2seq/{task}{suffix}/{attention}", "preset": length["preset"], "model": length["model"],
                  "train": length["train"]} for task in settings["tasks"] for attention in length["attentions"]]
    return rows


def seq2seq_tables(root: Path, settings: dict, record: dict) -> dict[Path, str]:
    """seq2seq.md and .json: exact match by source length (from each run's by_length.json), in bands and one by one,
    and for rows of several seeds each seed's at the longest trained length, twice it and four times it."""
    rows, summaries, counts = [], [], set()
    for plan_row in seq2seq_rows(settings):
        runs = []
        for seed in range(plan_row["seeds"]):
            run_dir = root / plan_row["folder"] / f"seed-{seed}"
            if not (run_dir / "summary.json").exists() or not (run_dir / "by_length.json").exists():
                continue
            summary, by_length = read_json(run_dir / "summary.json"), read_json(run_dir / "by_length.json")
            summaries.append(summary)
            counts.update(by_length["sequences"].values())
            runs.append({"seed": seed, "run": str(run_dir.relative_to(root)),
                         "exact_match_by_length": {int(n): v for n, v in by_length["exact_match"].items()},
                         "valid_error_by_epoch": [round(100 * m["valid_error"], 1) for m in read_metrics(run_dir)],
                         "seconds": summary["seconds"]})
        lengths = sorted({n for run in runs for n in run["exact_match_by_length"]})
        mean = {n: round(statistics.mean(run["exact_match_by_length"][n] for run in runs if n in run["exact_match_by_length"]), 1)
                for n in lengths}
        rows.append({"task": plan_row["task"], "attention": plan_row["attention"], "symbols": plan_row["symbols"],
                     "preset": plan_row["preset"], "options": {**plan_row["model"], "attention": plan_row["attention"]},
                     "exact_match_by_length": mean, "runs": runs})

    def band(row, low, high):
        values = [v for n, v in row["exact_match_by_length"].items() if low <= n <= high]
        return f"{statistics.mean(values):.1f}" if values else "–"

    lengths = sorted({n for r in rows for n in r["exact_match_by_length"]})
    train_low, train_high = (int(n) for n in settings["spec"].split("train=")[1].split(",")[0].split("-"))
    longest = max(lengths, default=train_high)
    step = train_high  # bands as long as the longest trained length: 11-20, 21-30, ... after training on 5-10
    bands = [(train_low, train_high)] + [(low, min(low + step - 1, longest)) for low in range(train_high + 1, longest + 1, step)]
    train = settings["train"]
    per_length = f"{min(counts)}" if len(counts) == 1 else f"{min(counts, default=0)} to {max(counts, default=0)}"
    schedule = f"halved every {train['lr_halve_every']} epochs" if train["lr_halve_every"] else "constant"
    md, made = sequences_header("Seq2seq: exact match (%) under greedy decoding, by source length", "seq2seq", record, summaries)
    md += (f"Task spec `TASK:{settings['spec']}` (tasks.seq2seq_tasks); attention {', '.join(settings['attentions'])}: model "
           f"{settings['model']} with a GRU encoder and decoder; Adam lr {train['lr']} {schedule}, batch {train['batch_size']}, "
           f"{train['epochs']} epochs, {seeds_text(settings['seeds'])}{' (mean over them)' * (settings['seeds'] > 1)}. ")
    length = settings.get("length")
    if length:
        extra = length["train"]
        md += (f"Attention {', '.join(length['attentions'])} (memnet.models.pointer): preset `{length['preset']}` "
               f"(train {extra}), {seeds_text(length['seeds'])} (mean over them), with {' and '.join(map(str, length['symbols']))} "
               f"symbols (`symbols=` in the task spec). ")
    md += (f"Trained on lengths {train_low}-{train_high}; "
           f"the test set has {per_length} sequences of every length. A sequence counts only if every symbol and the EOS are right.\n\n")
    keys = ["task", "attention", "symbols"]
    md += markdown_table(keys + [f"lengths {a}-{b}" + (" (train)" if a == train_low else "") for a, b in bands],
                         [[r[key] for key in keys] + [band(r, a, b) for a, b in bands] for r in rows])
    several = [r for r in rows if len(r["runs"]) > 1]
    marks = [n for n in (train_high, 2 * train_high, 4 * train_high) if n in lengths]
    if several and marks:
        md += ("\nEach seed at lengths " + ", ".join(map(str, marks)) + " (exact match %, seeds in order), and their mean ± sd:\n\n"
               + markdown_table(keys + [f"{n}: {head}" for n in marks for head in ("each seed", "mean ± sd")],
                                [[r[key] for key in keys] + [cell for n in marks for cell in seed_cells(r["runs"], n)] for r in several]))
    md += "\nBy length:\n\n" + markdown_table(keys + [str(n) for n in lengths],
                                               [[r[key] for key in keys] + [r["exact_match_by_length"].get(n, "–") for n in lengths]
                                                for r in rows])
    planned = sum(plan_row["seeds"] for plan_row in seq2seq_rows(settings))
    md += missing_line(len(summaries), planned)
    results = {"rows": rows, "settings": settings, "runs": len(summaries), "planned": planned, "made_by": made}
    return {root / "seq2seq.md": md, root / "seq2seq.json": json_text(results)}


def seed_cells(runs: list[dict], length: int) -> list[str]:
    """[each seed's exact match at `length`, their mean ± sd] of a row's runs."""
    values = [run["exact_match_by_length"][length] for run in runs if length in run["exact_match_by_length"]]
    return [", ".join(f"{v:.1f}" for v in values), mean_std(values)]


SEQUENCE_PARTS = {"temporal": temporal_tables, "echo": echo_tables, "seq2seq": seq2seq_tables}


def sequences_tables(root: Path) -> dict[Path, str]:
    """The tables of each part of the sequence benchmark that has finished runs, from sequences.json and the runs."""
    record = read_json(root / SEQUENCES_RECORD)
    return {path: text for part, build in SEQUENCE_PARTS.items() if any((root / "runs" / part).rglob("summary.json"))
            for path, text in build(root, record["settings"][part], record).items()}


# ---- every kind, and the command ----------------------------------------------------------------------------------

# ---- speed (scripts/bench_speed.py) -----------------------------------------------------------------------------------

SPEED_RECORD = "speed.json"
SPEED_PROTOCOLS = {  # speed.json key -> its section's title, and the wall-time targets in minutes on the 2-core CPU and a GPU
    "protocol_1k": ("The 1k per-task protocol", 4, 20 / 60),
    "protocol_1k_warm": ("The 1k per-task protocol again (torch's compile cache warm)", 4, 20 / 60),
    "joint": ("Joint training, 10 seeds", 15, None),
    "protocol_10k": ("The 10k per-task protocol", 25, None)}


def speed_target(run: dict, cpu_minutes: float, gpu_minutes: float | None) -> str:
    if not run["device"].startswith("cuda"):
        return f"the target on this CPU: at most {cpu_minutes} min"
    return f"the target on one H100/H200: at most {gpu_minutes * 60:.0f} s" if gpu_minutes else "no target on a GPU"


def speed_tables(root: Path) -> dict[Path, str]:
    """summary.md from speed.json: the same work four ways, and the protocols it names on the fast path."""
    record = read_json(root / SPEED_RECORD)
    machine, work = record["machine"], record["same_work"]
    env = work.get("environment", record["environment"])  # the same-work part may come from an earlier run (--keep-same-work)
    device = work.get("device", "cpu")
    lines = ["# Speed", "", f"Made by `{env['command']}` (code `{env['code_version']}`, torch {env['libraries']['torch']}) on "
             f"{machine['cpu']}, {machine['cores']} cores, GPU: {machine['gpu'] or 'none'}. One thread measures "
             f"{machine['matmul_gflops_one_thread']} GFLOP/s (1024² matmul) and {machine['copy_gbytes_per_s_one_thread']} GB/s (copy)."]
    if record["environment"] != env:  # the same-work part kept from an earlier run: say what wrote the rest
        lines[-1] += (f" The protocols' sections were read from their benchmarks' records by `{record['environment']['command']}` "
                      f"(code `{record['environment']['code_version']}`).")
    if "gpu_matmul_gflops" in machine:
        lines[-1] += (f" The GPU measures {machine['gpu_matmul_gflops']} GFLOP/s (8192² matmul, float32), "
                      f"{machine['gpu_matmul_gflops_bfloat16']} in bfloat16, and {machine['gpu_copy_gbytes_per_s']} GB/s (copy).")
    lines += ["", f"## The same work each way, one after another on one thread{' and the GPU' if device == 'cuda' else ''}", "",
              f"{work['work']}.", "", "| path | wall s | mean test error % |", "|---|---|---|"]
    lines += [f"| {mode.replace('_', ' ')} | {numbers['seconds']} | {numbers['mean_test_error']} |" for mode, numbers in work["modes"].items()]
    lines += ["", f"Compiled population against eager single runs: **{work['speedup']}x** their speed (above 1: faster); mean test error "
              f"{work['fast_mean_test_error']} against {work['eager_mean_test_error']}. Compiling the populations' steps from cold took "
              f"{work['compile_seconds']} s, timed apart before the rows above; the compiled rows then found torch's compile cache warm. "
              f"Counting that compile too, the compiled population ran at "
              f"**{work['eager_seconds'] / (work['fast_seconds'] + work['compile_seconds']):.2f}x** the eager single runs' speed."]
    if "compiled_population_bfloat16" in work["modes"]:
        half = work["modes"]["compiled_population_bfloat16"]
        lines += ["", f"Under bfloat16 autocast (`--precision bfloat16`) the compiled population's mean test error is "
                      f"{half['mean_test_error']}, against {work['fast_mean_test_error']} in float32 "
                      f"({half['mean_test_error'] - work['fast_mean_test_error']:+.2f}), in {half['seconds']} s against {work['fast_seconds']}."]
    for key, (title, cpu_minutes, gpu_minutes) in SPEED_PROTOCOLS.items():
        if key not in record:
            continue
        run = record[key]
        lines += ["", f"## {title} on the fast path", "",
                  f"{run['runs']} runs in **{run['seconds'] / 60:.1f} min** of wall time ({speed_target(run, cpu_minutes, gpu_minutes)}; "
                  f"{run['device']}; code `{run['code_version']}`), mean best-of-N test error {run['mean_best_test_error']} "
                  f"(table: `{run['benchmark']}/summary.md`).",
                  f"Its training steps count {run['train_step_flops'] / 1e12:.2f} TFLOP and at most {run['train_step_bytes'] / 1e12:.2f} TB "
                  f"of memory traffic (each op's inputs and outputs, unfused): {run['achieved_gflops']} GFLOP/s and "
                  f"{run['achieved_gbytes_per_s']} GB/s achieved over the whole run, against {machine['matmul_gflops_one_thread']} GFLOP/s "
                  f"and {machine['copy_gbytes_per_s_one_thread']} GB/s that one thread can do ({machine['cores']} cores here)."]
        if "populations" in run:
            lines += speed_breakdown(run, (gpu_minutes if run["device"].startswith("cuda") else cpu_minutes) * 60, machine["cores"])
    return {root / "summary.md": "\n".join(lines) + "\n"}


def speed_breakdown(run: dict, target_seconds: float | None, cores: int) -> list[str]:
    """Where a protocol's time went, population by population, and what its target asks of a step."""
    lines = ["", "Where the time went: each population's members' seconds, summed from their run records (its worker's time on it, "
             "compile and evaluation included), and of those its first steps (compiling, mostly; one a part where the benchmark cut "
             "it, - where the records predate them); a member-step is one member's share of a training step.", "",
             "| tasks | members | stories padded to | steps | seconds | of which first steps | ms a member-step |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {', '.join(name.split(':')[-1] for name in unit['tasks'])} | {unit['members']} | {unit['story_slots']} slots x "
              f"{unit['story_words']} words | {unit['steps']} | {unit['seconds']} | {unit.get('first_step_seconds') or '-'} | "
              f"{1000 * unit['seconds'] / unit['steps'] / unit['members']:.2f} |" for unit in run["populations"]]
    busy, workers = sum(unit["seconds"] for unit in run["populations"]), run.get("workers") or cores
    lines += ["", f"Together {busy:.0f} s of training on {workers} worker(s): at least {busy / workers:.0f} s of wall time however "
                  f"they share it; the other {run['seconds'] - busy / workers:.0f} s of the {run['seconds']:.0f} went to loading data, "
                  "starting workers and waiting for the last."]
    if target_seconds and busy / workers > target_seconds:
        lines[-1] += (f" The target of {target_seconds:.0f} s needs every step {busy / workers / target_seconds:.2f}x faster "
                      "(or more cores).")
    return lines


# ---- ablation: arms of one preset, each a benchmark of its own (scripts/release_ablation.py) ---------------------

ABLATION_RECORD = "ablation.json"  # its arms ({name: flags}), the baseline benchmark beside it, every command
MOVED = 5.0  # a task whose best-of-N error moved by more than this many points is named in the ablation table


def setting_totals(root: Path) -> tuple[dict[int, dict], list[tuple[float, int]]]:
    """The one (unpooled) setting of a benchmark: its per-task cells and per-seed totals."""
    runs = read_runs(root)
    if len(runs) != 1:
        raise ValueError(f"{root}: an ablation arm holds one setting, found {sorted(runs) or 'none'}")
    (group_runs,) = runs.values()
    return aggregate(group_runs), per_seed_totals(group_runs)


def ablation_tables(root: Path) -> dict[Path, str]:
    """Each arm's own benchmark tables, and summary.md / results.json: per arm the best-of-N mean and failed
    tasks, the seed mean ± sd, their change from the baseline (all switches on), and the tasks that moved."""
    record = read_json(root / ABLATION_RECORD)
    baseline = root.parent / record["baseline"]
    arms = {arm: flags for arm, flags in record["arms"].items() if has_runs(root / arm)}
    tables = {path: text for arm in arms for path, text in babi_tables(root / arm).items()}
    base_cells, base_totals = setting_totals(baseline)
    base_best = statistics.fmean(cell["best"] for cell in base_cells.values())
    base_seed = statistics.fmean(mean for mean, _ in base_totals)
    rows, columns = [], ["switch turned back", "flags", "seeds", "best of N (by valid)", "failed", "seed mean ± sd",
                         "best: change", "seed mean: change", f"tasks moved > {MOVED:g} (best, baseline -> arm)"]
    entries = [{"arm": record["baseline"], "flags": "(none: `--preset release`)", "cells": base_cells, "totals": base_totals}]
    for arm, flags in arms.items():
        cells, totals = setting_totals(root / arm)
        entries.append({"arm": arm, "flags": flags, "cells": cells, "totals": totals})
    for entry in entries:
        cells, totals = entry["cells"], entry["totals"]
        complete = set(cells) == set(base_cells)
        best = statistics.fmean(cell["best"] for cell in cells.values())
        seed_mean = statistics.fmean(mean for mean, _ in totals) if totals else None
        moved = [f"{task}: {base_cells[task]['best']:.1f} -> {cell['best']:.1f}" for task, cell in cells.items()
                 if task in base_cells and abs(cell["best"] - base_cells[task]["best"]) > MOVED]
        entry.update(best=round(best, 2), failed=sum(cell["best"] > FAILED_ABOVE for cell in cells.values()),
                     seed_mean=None if seed_mean is None else round(seed_mean, 2), moved=moved, complete=complete)
        is_base = entry["arm"] == record["baseline"]
        rows.append([entry["arm"], f"`{entry['flags']}`" if not is_base else entry["flags"],
                     min(cell["n"] for cell in cells.values()), fmt(best) + ("" if complete else f" ({len(cells)} tasks)"),
                     entry["failed"], mean_std([mean for mean, _ in totals]),
                     "" if is_base else f"{best - base_best:+.1f}",
                     "" if is_base or seed_mean is None else f"{seed_mean - base_seed:+.1f}", "; ".join(moved) or "–"])
    text = (f"# {root.name}\n\nThe release preset (`--preset release`, MemN2N per task on bAbI 1k) with one of its switches "
            f"turned back to this library's default, each arm a benchmark of its own (its folder holds its per-task table). "
            f"Mean test error (%) over the 20 tasks: of the best of N seeds per task, chosen by validation error, and of each "
            f"seed's mean (± sd over seeds). A task fails above {FAILED_ABOVE:g}%. Changes are the arm minus the release "
            f"preset ({record['baseline']}); with 10 seeds the seed mean's sd is the noise to read them against.\n\n"
            + markdown_table(columns, rows))
    missing = [f"{arm} (`{flags}`)" for arm, flags in record["arms"].items() if arm not in arms]
    if missing:
        text += f"\nNot run yet: {', '.join(missing)}; `python scripts/release_ablation.py --data-dir DIR` trains them.\n"
    results = {"baseline": record["baseline"],
               "arms": [{key: entry[key] for key in ("arm", "flags", "best", "failed", "seed_mean", "moved", "complete")}
                        for entry in entries]}
    return {**tables, root / "summary.md": text, root / "results.json": json_text(results)}


BUILDERS = {"babi": babi_tables, "faithfulness": faithfulness_tables, "sequences": sequences_tables, "timing": timing_tables,
            "speed": speed_tables, "ablation": ablation_tables}


def has_runs(folder: Path) -> bool:
    """Whether a folder holds a benchmark's finished runs (runs/<model-spec>/<data>/<label>/seed-S/summary.json)."""
    return any((folder / "runs").glob("*/*/*/seed-*/summary.json"))


def kind_of(folder: Path) -> str | None:
    """Which builder makes a folder's tables, told by the records it holds; None if none does."""
    if (folder / FAITHFULNESS_RECORD).exists():
        return "faithfulness"
    if (folder / SPEED_RECORD).exists():
        return "speed"
    if (folder / ABLATION_RECORD).exists():
        return "ablation"
    if (folder / SEQUENCES_RECORD).exists():  # before babi: its runs/PART/A/B/seed-S/ have the benchmark's depth
        return "sequences"
    if has_runs(folder):
        return "babi"
    if any(map(is_timing_record, folder.glob("*.json"))):
        return "timing"
    return None


def table_folders(results_dir: str | Path) -> tuple[list[Path], list[Path]]:
    """(folders whose tables are made from records, folders that are not): `results_dir` itself if it is one, else its subfolders."""
    results_dir = Path(results_dir)
    if kind_of(results_dir):
        return [results_dir], []
    folders = sorted(path for path in results_dir.iterdir() if path.is_dir())
    return [f for f in folders if kind_of(f)], [f for f in folders if not kind_of(f)]


def build_tables(results_dir: str | Path) -> dict[Path, str]:
    """Every table under `results_dir` as its records give it: {path: text}; writes nothing."""
    return {path: text for folder in table_folders(results_dir)[0] for path, text in BUILDERS[kind_of(folder)](folder).items()}


def stale_tables(tables: dict[Path, str]) -> list[Path]:
    """The tables whose file is missing or differs from `tables`' text, byte for byte (results.csv ends its lines in \\r\\n)."""
    return [path for path, text in tables.items() if not path.exists() or path.read_bytes() != text.encode()]


def write_tables(results_dir: str | Path) -> list[Path]:
    """Rewrite (atomically) every table under `results_dir` that differs from its records; return those rewritten."""
    tables = build_tables(results_dir)
    stale = stale_tables(tables)
    for path in stale:
        write_atomic(path, tables[path])
    return stale


def add_report_parser(commands) -> None:
    parser = commands.add_parser("report", help="rebuild every table under a results folder from its run records",
                                 description="Rebuild summary.md, results.csv, results.json (and the faithfulness, sequence and timing tables) "
                                             "from the records under RESULTS_DIR; --check only compares.")
    parser.add_argument("results_dir", metavar="RESULTS_DIR", help="results/, or one folder of it")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 listing each table that differs from its records")
    parser.set_defaults(run=run_report_command)


def run_report_command(args: argparse.Namespace) -> None:
    root = Path(args.results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no folder {root}")
    folders, others = table_folders(root)
    where = f"{len(folders)} folder{'s' * (len(folders) != 1)}"
    if not folders:
        raise ValueError(f"no folder in {root} holds records a table is made from")
    tables = build_tables(root)
    stale = stale_tables(tables)
    if args.check:
        for path in stale:
            print(f"differs from its records: {path}")
        if stale:
            print(f"{len(stale)} of {len(tables)} tables differ from their records; `memnet report {root}` rebuilds them", file=sys.stderr)
            sys.exit(1)
        print(f"all {len(tables)} tables in {where} match their records")
    else:
        for path in stale:
            write_atomic(path, tables[path])
            print(f"wrote {path}")
        print(f"{len(stale)} of {len(tables)} tables in {where} rewritten; the rest already matched their records")
    if others:
        print("not made from records by memnet report: " + ", ".join(str(folder) for folder in others))
