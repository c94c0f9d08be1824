"""The ablation table (scripts/release_ablation.py): arms of one preset, each a benchmark of its own, read against
the baseline benchmark beside them.

    ablation.json and one benchmark folder per arm -> each arm's tables, and summary.md, results.json over the arms
"""

import statistics
from pathlib import Path

from memnet.records import read_json
from memnet.run_record import has_runs
from memnet.tables.babi import aggregate, babi_tables, per_seed_totals, read_runs
from memnet.tables.common import FAILED_ABOVE, fmt, json_text, markdown_table, mean_std

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
