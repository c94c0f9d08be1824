"""How far a protocol's table moves when the same grid is trained again: the reruns results/leaderboard.json names.

A lone run on the CPU repeats bit for bit (same code, same threads); a run trained in a population does not
repeat alone, and a population repeats only with the same members, code and threads. So the same grid rerun
on other code gives other runs, and this table says how far its numbers move: each rerun's best of N by
validation and its seed mean, and how many of its runs give the test error of the rerun before it exactly.
"""

import statistics
from pathlib import Path

from memnet.records import read_json
from memnet.tables.babi import aggregate, per_seed_totals, read_runs
from memnet.tables.common import markdown_table


def rerun_row(results_dir: Path, entry: dict, before: dict[str, float] | None) -> tuple[list, dict[str, float]]:
    """One rerun's row and its runs' test errors by run folder (to compare the next rerun with)."""
    root = results_dir / entry["benchmark"]
    runs = read_runs(root)[entry["group"]]
    invocations = [call for call in read_json(root / "bench.json")["invocations"] if call.get("runs_trained")]
    cells, seeds = aggregate(runs), [mean for mean, _ in per_seed_totals(runs)]
    tests = {run["run"]: run["test"] for run in runs}
    same = "–" if before is None else f"{sum(tests.get(run) == test for run, test in before.items())} of {len(before)}"
    codes = ", ".join(dict.fromkeys(f"`{call['code_version'][:8]}`" for call in invocations))
    return [f"[{entry['benchmark']}]({entry['benchmark']}/summary.md)", codes, entry["note"],
            f"{statistics.fmean(cell['best'] for cell in cells.values()):.1f}",
            f"{statistics.fmean(seeds):.1f} ± {statistics.stdev(seeds):.1f}", same], tests


def reruns_table(results_dir: Path, reruns: list[dict]) -> str:
    rows, before = [], None
    for entry in reruns:
        row, before = rerun_row(results_dir, entry, before)
        rows.append(row)
    return markdown_table(["benchmark", "code", "what differed from the row above", "best of N: mean", "seed mean ± sd",
                           "runs with the test error of the row above"], rows)
