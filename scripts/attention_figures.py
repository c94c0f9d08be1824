"""Attention figures of trained memory networks, from a benchmark's best runs.

    python scripts/attention_figures.py results/babi-1k-memn2n --tasks 2,3,16,19 --data-dir DIR

For each task: the best run (lowest validation error) draws the first test story that has all its
supporting facts in memory, as a PNG heatmap; all tasks share one HTML page; and the run's
supporting-fact report (per hop, how often the top sentence is a supporting fact) goes in a table.
Needs the runs' checkpoints (kept beside the records, not committed).
"""

import argparse
import json
from pathlib import Path

import torch

from memnet.inspection import attend, load_run, render_html, render_png, support_report
from memnet.records import environment, read_json, write_atomic, write_json


def first_full_story(run, split: str = "test", least: int = 4) -> int:
    """A story with every supporting fact in memory and at least `least` sentences: readable and fair."""
    tensors = run.data.splits[split]
    enough = tensors["memory_mask"].sum(1) >= least
    complete = (tensors["supporting"] >= 0).any(1)
    return int((enough & complete).nonzero()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench", help="a benchmark folder written by memnet bench")
    parser.add_argument("--tasks", default="2,3,16,19")
    parser.add_argument("--data-dir", help="where the bAbI data is (default: where the runs were trained)")
    parser.add_argument("--out", default="results/attention")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = read_json(Path(args.bench) / "results.json")["rows"]
    examples, lines, record = [], [], {"bench": args.bench, "figures": {}}
    for task in map(int, args.tasks.split(",")):
        row = next(r for r in rows if r["task"] == task and " per-task" in r["group"] and r["group"].startswith("memn2n"))
        run = load_run(Path(args.bench) / row["best_run"], args.data_dir)
        example = attend(run, "test", [first_full_story(run)])[0]
        render_png(example, out / f"task{task}.png")
        examples.append(example)
        tensors = run.data.splits["test"]
        with torch.no_grad():
            attention = run.model(tensors).attention
        report = support_report(attention, tensors["supporting"], tensors["task"])["all"]
        lines.append(f"| {task} | {row['best']:.1f} | " + " | ".join(f"{100 * share:.0f}%" for share in report) + f" | `{row['best_run']}` |")
        record["figures"][task] = {"run": row["best_run"], "test_index": example["index"], "hop_support_share": report}
    write_atomic(out / "attention.html", render_html(examples, "MemN2N attention on bAbI 1k (best runs)"))
    table = ["| task | test error % | hop 1 | hop 2 | hop 3 | run |", "|---|---|---|---|---|---|", *lines]
    record["environment"] = environment(torch.device("cpu"))
    write_json(out / "figures.json", record)
    write_atomic(out / "support.md", "Share of test questions whose most-attended sentence (per hop) is a supporting fact, "
                                     f"best MemN2N run per task from `{args.bench}`.\n\n" + "\n".join(table) + "\n")
    print("\n".join(table))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
