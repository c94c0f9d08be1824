"""The leaderboard: where each model stands, from the run records.

    RESULTS/leaderboard.json   which benchmark and group hold each model's setting chosen on validation, per
                               protocol (1k per task, 1k joint, 10k per task), and the settings tried per model
    -> RESULTS/README.md       its opening table, the settings tried and the reruns (memnet.tables.reruns), between
                               the markers below
    -> RESULTS/../README.md    the opening table again, where the project's README has the markers

Per protocol and model: the best of N seeds by validation (per task; a joint run is one model, chosen on all of
validation), its mean test error over the tasks and its failed tasks (> 5%); and each seed's mean error over the
tasks, as mean ± sd over the seeds. The published rows (memnet.published.LEADERBOARD) stand below ours, labelled.
A setting's "mean valid" is the mean over tasks of its best run's validation error: what the choice was made on.
"""

import json
import statistics
from pathlib import Path

from memnet.published import LEADERBOARD
from memnet.tables.babi import aggregate, per_seed_totals, read_runs
from memnet.tables.common import FAILED_ABOVE, markdown_table
from memnet.tables.reruns import reruns_table

DECLARATION = "leaderboard.json"
START = "<!-- leaderboard:start (made by memnet report from the run records; do not edit) -->"
END = "<!-- leaderboard:end -->"
PROTOCOLS = {"1k": "1k per task", "joint": "1k joint", "10k": "10k per task"}
TASKS = 20  # a protocol over fewer tasks (10k: the shared copy has no task-3 train file) says so in its cell


def standing(results_dir: Path, entry: dict) -> dict:
    """One model's numbers on one protocol: best of N by validation (mean, failed), seed mean ± sd, seeds, tasks."""
    runs = read_runs(results_dir / entry["benchmark"])[entry["group"]]
    cells, seeds = aggregate(runs), per_seed_totals(runs)
    best = [cell["best"] for cell in cells.values()]
    return {"best": statistics.fmean(best), "failed": sum(error > FAILED_ABOVE for error in best), "tasks": len(cells),
            "n": max(cell["n"] for cell in cells.values()), "seed_means": [mean for mean, _ in seeds],
            "valid": statistics.fmean(cell["best_valid"] for cell in cells.values())}


def best_cell(numbers: dict | None) -> str:
    if numbers is None:
        return "–"
    notes = [f"best of {numbers['n']}"] + ([f"{numbers['tasks']} tasks"] if numbers["tasks"] != TASKS else [])
    return f"{numbers['best']:.1f} / {numbers['failed']} ({', '.join(notes)})"


def seed_cell(numbers: dict | None) -> str:
    if numbers is None or len(numbers["seed_means"]) < 2:
        return "–"
    means = numbers["seed_means"]
    return f"{statistics.fmean(means):.1f} ± {statistics.stdev(means):.1f}"


def link(prefix: str, benchmark: str) -> str:
    return f"[{benchmark}]({prefix}{benchmark}/summary.md)"


def leaderboard_table(results_dir: Path, declaration: dict, prefix: str) -> str:
    """Our rows, then the published ones; `prefix` makes the links work from the file the table goes in."""
    columns = ["model", "setting (chosen on validation)"]
    for title in PROTOCOLS.values():
        columns += [f"{title}: mean / failed", f"{title}: seed mean ± sd"]
    rows = []
    for model in declaration["models"]:
        numbers = {key: standing(results_dir, model[key]) if key in model else None for key in PROTOCOLS}
        records = " · ".join(link(prefix, model[key]["benchmark"]) for key in PROTOCOLS if key in model)
        row = [f"**{model['model']}** (ours)", f"{model['setting']}; records: {records}"]
        for key in PROTOCOLS:
            row += [best_cell(numbers[key]), seed_cell(numbers[key])]
        rows.append(row)
    for published in LEADERBOARD:
        row = [f"{published['model']} (published)", f"{published['selection']}; {published['source']}"]
        for key in PROTOCOLS:
            row += [published[key] or "–", ""]
        rows.append(row)
    return ("Test error (%) on bAbI: mean over the tasks / failed tasks (> 5%). Ours: the best of N seeds by validation "
            "error per task (a joint run is one model, chosen on all of validation), and the mean ± sd over seeds of each "
            "seed's mean error. Published rows are the papers' numbers, each chosen as its paper says.\n\n"
            + markdown_table(columns, rows))


def settings_lines(results_dir: Path, declaration: dict, prefix: str) -> str:
    """Per model, each setting tried on bAbI 1k: its options, mean valid error of its best runs, chosen or not (the
    model's 1k benchmark, or a setting marked "chosen": a tuning run whose setting the 1k protocol then trained)."""
    lines = ["Settings tried per model on bAbI 1k per task, each a benchmark of 10 seeds unless it says otherwise; "
             "mean valid: the mean over the tasks of the best run's validation error, what a setting is chosen on.", ""]
    for model in declaration["models"]:
        lines.append(f"- **{model['model']}**")
        chosen = (model["1k"]["benchmark"], model["1k"]["group"])
        for setting in model["settings"]:
            numbers = standing(results_dir, setting)
            # a tuning benchmark on a few tasks says itself which of its settings the protocol then ran ("chosen": true)
            mark = "**chosen**" if (setting["benchmark"], setting["group"]) == chosen or setting.get("chosen") else "not chosen"
            lines.append(f"  - {setting['options']}: mean valid {numbers['valid']:.2f}, {mark} "
                         f"(best of {numbers['n']}: test {numbers['best']:.1f}; {link(prefix, setting['benchmark'])})")
    return "\n".join(lines) + "\n"


def with_block(text: str, block: str, path: Path) -> str:
    """`text` with what lies between the markers replaced by `block`."""
    if START not in text or END not in text:
        raise ValueError(f"{path} has no leaderboard markers; put the lines {START} and {END} where the table goes")
    head, rest = text.split(START, 1)
    return head + START + "\n" + block + END + rest.split(END, 1)[1]


def leaderboard_tables(results_dir: Path) -> dict[Path, str]:
    """results/README.md with the leaderboard and the settings tried; the project's README with the leaderboard."""
    declaration = json.loads((results_dir / DECLARATION).read_text())
    readme = results_dir / "README.md"
    block = leaderboard_table(results_dir, declaration, "") + "\n" + settings_lines(results_dir, declaration, "")
    if declaration.get("reruns"):
        block += ("\nHow far a table moves when the same grid is trained again (MemN2N, `--preset release`, bAbI 1k, 10 seeds; "
                  "test error %): `memnet train --from RUN` repeats a lone CPU run bit for bit, but a run trained in a "
                  "population repeats only in the same population, so a rerun on other code is a new draw.\n\n"
                  + reruns_table(results_dir, declaration["reruns"]))
    tables = {readme: with_block(readme.read_text(), block, readme)}
    project = results_dir.parent / "README.md"
    if project.exists() and START in project.read_text():
        prefix = f"{results_dir.name}/"
        tables[project] = with_block(project.read_text(), leaderboard_table(results_dir, declaration, prefix), project)
    return tables
