"""`memnet report`: every table under results/ made from its records, one builder per kind of results folder.

    memnet report results                  rebuild every table under results/ from the records
    memnet report results --check          write nothing; exit 1 naming each table that differs from its records
    memnet report results --runs           every run record under results/, one JSON object a line
    memnet report results/babi-1k-memn2n   one folder

The kinds (`BUILDERS`; `kind_of` tells a folder's kind from the records it holds), each built by a module of
memnet.tables, beside the script that writes its records:

    babi          a `memnet bench` folder: runs.jsonl.gz and bench.json (memnet.tables.babi)
    faithfulness  scripts/faithfulness.py (memnet.tables.faithfulness)
    sequences     scripts/bench_sequences.py: temporal order, echo, seq2seq (below)
    timing        scripts/time_run.py (memnet.tables.timing)
    speed         scripts/bench_speed.py (memnet.tables.speed)
    ablation      scripts/release_ablation.py (memnet.tables.ablation)
    leaderboard   results/leaderboard.json: where each model stands, in results/README.md and the README (memnet.tables.leaderboard)

A builder reads run records (memnet.run_record: a benchmark's pack, and any run folder not packed yet) and
the script's record, and returns {path: text} without writing, so `--check` and a rebuild see the same
tables. The best run is always chosen by `memnet.selection.best_of`. Another kind of folder is one more
function from a folder to {path: text}, an entry in `BUILDERS` and a line in `kind_of`.
"""

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from memnet.records import read_json, write_atomic
from memnet.run_record import benchmark_folders, has_runs, runs_of
from memnet.tables.ablation import ABLATION_RECORD, ablation_tables
from memnet.tables.babi import babi_tables
from memnet.tables.common import json_text, markdown_table, mean_std
from memnet.tables.faithfulness import FAITHFULNESS_RECORD, faithfulness_tables
from memnet.tables.leaderboard import DECLARATION, leaderboard_tables
from memnet.tables.speed import SPEED_RECORD, speed_tables
from memnet.tables.timing import is_timing_record, timing_tables

SEQUENCES_RECORD = "sequences.json"  # written by scripts/bench_sequences.py: its plan and every command that ran it
BY_LENGTH = "by_length.json"  # a seq2seq run's exact match per source length, beside its summary (scripts/bench_sequences.py)


# ---- sequences: temporal order, echo and seq2seq (scripts/bench_sequences.py) -------------------------------------



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
            f"{seconds:.1f} s of training. Every run's config, metrics and summary are in `runs.jsonl.gz` (`runs/{part}/...`); "
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

    rows, summaries, planned, finished = [], [], 0, runs_of(root)
    for row in settings["rows"]:
        models = {}
        for column, model in settings["columns"].items():
            runs = []
            for seed in range(row["seeds"]):
                path = f"runs/temporal/{row['name']}/{column}/seed-{seed}"
                planned += 1
                if path not in finished:
                    continue
                summary, metrics = finished[path].summary, finished[path].metrics
                summaries.append(summary)
                runs.append({"seed": seed, "run": path, "test_accuracy": round(100 - summary["test_error"]["all"], 2),
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
    rows, summaries, finished = [], [], runs_of(root)
    for delay in settings["delays"]:
        row = {"echo_step": delay}
        for cell in settings["cells"]:
            row[cell] = []
            for seed in range(settings["seeds"]):
                path = f"runs/echo/{cell.lower()}/delay-{delay}/seed-{seed}"
                if path in finished:
                    summaries.append(finished[path].summary)
                    row[cell].append({"run": path, **summaries[-1]})
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
    rows, summaries, counts, finished = [], [], set(), runs_of(root)
    for plan_row in seq2seq_rows(settings):
        runs = []
        for seed in range(plan_row["seeds"]):
            path = f"{plan_row['folder']}/seed-{seed}"
            if path not in finished or BY_LENGTH not in finished[path].extra:
                continue
            summary, by_length = finished[path].summary, finished[path].extra[BY_LENGTH]
            summaries.append(summary)
            counts.update(by_length["sequences"].values())
            runs.append({"seed": seed, "run": path,
                         "exact_match_by_length": {int(n): v for n, v in by_length["exact_match"].items()},
                         "valid_error_by_epoch": [round(100 * m["valid_error"], 1) for m in finished[path].metrics],
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
    parts = {Path(path).parts[1] for path in runs_of(root)}  # runs/PART/...
    return {path: text for part, build in SEQUENCE_PARTS.items() if part in parts
            for path, text in build(root, record["settings"][part], record).items()}


# ---- every kind, and the command ----------------------------------------------------------------------------------

BUILDERS = {"babi": babi_tables, "faithfulness": faithfulness_tables, "sequences": sequences_tables, "timing": timing_tables,
            "speed": speed_tables, "ablation": ablation_tables}


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
    """(folders whose tables are made from records, folders that are not): `results_dir` itself if it is one, else its
    subfolders, and the subfolders of a folder that only groups others (results/archive/)."""
    results_dir = Path(results_dir)
    if kind_of(results_dir):
        return [results_dir], []
    made, others = [], []
    for folder in sorted(path for path in results_dir.iterdir() if path.is_dir()):
        inner = [path for path in sorted(folder.iterdir()) if path.is_dir() and kind_of(path)] if not kind_of(folder) else []
        made += [folder] if kind_of(folder) else inner
        others += [] if kind_of(folder) or inner else [folder]
    return made, others


def build_tables(results_dir: str | Path) -> dict[Path, str]:
    """Every table under `results_dir` as its records give it, and the leaderboard where `results_dir` declares one:
    {path: text}; writes nothing."""
    results_dir = Path(results_dir)
    tables = {path: text for folder in table_folders(results_dir)[0] for path, text in BUILDERS[kind_of(folder)](folder).items()}
    if (results_dir / DECLARATION).exists():
        tables.update(leaderboard_tables(results_dir))
    return tables


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
    parser.add_argument("--runs", action="store_true",
                        help="write nothing; print every run record under RESULTS_DIR, one JSON object a line: "
                             "path (the run's folder relative to RESULTS_DIR), identity, config, summary, metrics")
    parser.set_defaults(run=run_report_command)


def print_runs(results_dir: Path) -> None:
    """`memnet report DIR --runs`: every run record under DIR (packed or in its folder), one JSON object a line."""
    try:
        for root in benchmark_folders(results_dir):
            for path, record in runs_of(root).items():
                line = {**record.line(), "path": (root / path).relative_to(results_dir).as_posix()}
                sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")


def run_report_command(args: argparse.Namespace) -> None:
    root = Path(args.results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no folder {root}")
    if args.runs:
        print_runs(root)
        return
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
