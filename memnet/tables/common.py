"""What every table builder shares: numbers as the tables print them, and JSON as the records write it."""

import json
import statistics

FAILED_ABOVE = 5.0  # a task "fails" when its test error is above 5% (the paper's convention)


def json_text(obj) -> str:
    """JSON as memnet.records.write_json writes it."""
    return json.dumps(obj, indent=2, sort_keys=False) + "\n"


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def spread(values: list[float]) -> str:
    return f"{statistics.fmean(values):.1f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.1f}"


def seed_count(counts: list[int]) -> str:
    """"5", or "3–5" where tasks finished different numbers of seeds (mid-benchmark)."""
    counts = sorted(set(counts))
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def markdown_table(columns: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]) + "\n"
