"""Attention figures of trained memory networks, from a benchmark's best runs.

    python scripts/attention_figures.py results/babi-1k-memn2n results/babi-1k-baselines --tasks 2,3,16,19 --data-dir DIR
    python scripts/attention_figures.py results/babi-1k-qrn --draw qrn --models qrn --out results/attention-qrn --data-dir DIR

For each `--tasks` task, the best run of model `--draw` (lowest validation error; of the pooled group where
settings were run side by side) draws the first test story
that has all its supporting facts in memory, as a PNG heatmap; they share one HTML page. For every
task and every model of `--models` in the benchmarks, the best
run's supporting-fact report (per row of its attention: a MemN2N hop, a QRN layer's update gate, a Universal
Transformer step; how often the top sentence is a supporting fact; a hop that
weighs the empty memories above every sentence is a miss) goes in
`support.md`. Needs the runs' checkpoints (kept beside the records, not committed).
"""

import argparse
from pathlib import Path

import torch

from memnet.inspection import attend, load_run, render_html, render_png, split_support
from memnet.records import environment, read_json, write_atomic, write_json
from memnet.tables.babi import is_pooled


def first_full_story(run, split: str = "test", least: int = 4) -> int:
    """A story with every supporting fact in memory and at least `least` sentences: readable and fair."""
    stories = run.data.splits[split]
    enough = stories.memory_mask.sum(1) >= least
    complete = (stories.supporting >= 0).any(1)
    return int((enough & complete).nonzero()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benches", nargs="+", help="benchmark folders written by memnet bench")
    parser.add_argument("--tasks", default="2,3,16,19", help="tasks to draw (from the first benchmark's runs of --draw)")
    parser.add_argument("--draw", default="memn2n", help="the model whose best runs are drawn")
    parser.add_argument("--models", default="memn2n,attentive", help="the models in the supporting-fact report")
    parser.add_argument("--data-dir", help="where the bAbI data is (default: where the runs were trained)")
    parser.add_argument("--out", default="results/attention")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record, examples, lines, rows_named = {"benches": args.benches, "figures": {}, "support": []}, [], [], {}
    for bench in args.benches:
        rows = read_json(Path(bench) / "results.json")["rows"]
        # where settings were pooled (memn2n-A+B), the pooled choice stands for them
        pooled = {row["group"].split(" ", 1)[1] for row in rows if is_pooled(row["group"])}
        for row in rows:
            if not row["group"].startswith(tuple(args.models.split(","))) or " per-task" not in row["group"]:
                continue
            spec, data = row["group"].split(" ", 1)
            if spec.startswith("memn2n") and not is_pooled(row["group"]) and data in pooled:
                continue
            run = load_run(Path(bench) / row["best_run"], args.data_dir)
            shares = split_support(run, "test")["all"]
            rows_named[getattr(run.model, "ATTENTION_ROW", "hop")] = max(len(shares), rows_named.get(getattr(run.model, "ATTENTION_ROW", "hop"), 0))
            record["support"].append({"group": row["group"], "task": row["task"], "run": f"{bench}/{row['best_run']}",
                                      "test_error": row["best"], "hop_support_share": shares})
            lines.append(f"| {row['task']} | {row['group']} | {row['best']:.1f} | "
                         + " | ".join(f"{100 * share:.0f}%" for share in shares) + " |")
            if bench == args.benches[0] and row["group"].startswith(args.draw) and str(row["task"]) in args.tasks.split(","):
                example = attend(run, "test", [first_full_story(run)])[0]
                render_png(example, out / f"task{row['task']}.png")
                examples.append(example)
                record["figures"][row["task"]] = {"run": row["best_run"], "test_index": example["index"]}
    write_atomic(out / "attention.html", render_html(examples, f"{args.draw} attention on bAbI 1k (best runs)"))
    lines.sort(key=lambda line: (int(line.split("|")[1]), line))
    (row, count), = rows_named.items() if len(rows_named) == 1 else [("row", max(rows_named.values()))]
    columns = [f"{row} {k + 1}" for k in range(count)]
    lines = [line + " |" * (count - line.count("%")) for line in lines]
    table = ["| task | model | test error % | " + " | ".join(columns) + " |", "|---" * (3 + count) + "|", *lines]
    record["environment"] = environment(torch.device("cpu"))
    write_json(out / "figures.json", record)
    write_atomic(out / "support.md", "Share of test questions whose most-attended sentence (per hop) is a supporting fact, "
                                     "for the best run (by validation) of each task and model. A hop that weighs MemN2N's empty memories "
                                     "above every sentence counts as a miss. The attentive reader reads once.\n\n"
                 + "\n".join(table) + f"\n\nMade by `{record['environment']['command']}` at code version "
                 f"`{record['environment']['code_version']}`.\n")
    print("\n".join(table))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
