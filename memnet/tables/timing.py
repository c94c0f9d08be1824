"""The wall time of whole `memnet train` commands (scripts/time_run.py): NAME.json -> NAME.md."""

from pathlib import Path

from memnet.records import read_json

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
