"""The synthetic-sequence benchmark: a run record per trained model, and plots, in results/sequences/.

    python scripts/bench_sequences.py                      # all three parts, ~10-15 min on 1 CPU thread
    python scripts/bench_sequences.py --only echo          # one part: temporal, echo or seq2seq
    python scripts/bench_sequences.py --smoke --out /tmp/s # tiny settings, a few seconds: checks the script

Parts (every setting is in the PLANS below):
  temporal  RNN vs GRU vs LSTM (and LSTM with chrono initialisation) on temporal order, every level,
            same hidden size per level, a few seeds; the LSTM's hidden units over one sequence
            (hidden_units.png)
  echo      RNN vs LSTM on echo by delay, truncated BPTT (memnet.echo)
  seq2seq   encoder-decoder with additive, dot and no attention on copy, reverse and sort: exact match by
            test length, to four times the longest trained; alignment heatmaps (alignment.png); the pointer and
            shift attentions (preset seq2seq-length, 3 seeds, 10 and 20 symbols) and their alignment on a
            40-long source (alignment_length.png)

Every run leaves its record under OUT/runs/ (checkpoints are not committed):

    runs/temporal/<row>/<column>/seed-S/     memnet.train.train_run: config.json, metrics.jsonl, summary.json
    runs/seq2seq/<task>/<attention>/seed-S/  the same, and by_length.json (exact match per test length);
                                             runs/seq2seq/<task>-symbols-K/... at K symbols other than 10
    runs/echo/<cell>/delay-D/seed-S/         config.json (EchoConfig, environment), summary.json (accuracies)

and OUT/sequences.json records the plan and every command that ran it. Each run goes into OUT/runs.jsonl.gz
as it finishes (memnet.run_record), which is what git holds; the run folders stay on disk. Resumable: a
finished run (packed, or with a summary in its folder) is not trained again, so re-running the script
finishes what is missing, also in a fresh clone. The tables
(temporal_order, echo, seq2seq: .md and .json) are made from those records by memnet.report
(`memnet report results` remakes them, `--check` verifies them); the plots (png) are made here.
"""

import argparse
import dataclasses
import functools
import statistics
import time
from pathlib import Path

import torch

from memnet.batches import IGNORE_INDEX
from memnet.echo import EchoConfig, train_echo
from memnet.inspection import load_run
from memnet.locks import hold
from memnet.presets import PRESETS
from memnet.records import device_name, environment, read_json, write_json
from memnet.report import BY_LENGTH, SEQUENCES_RECORD, seq2seq_rows, write_tables
from memnet.run_record import CHECKPOINT, CONFIG, SUMMARY, benchmark_of, is_finished, pack, packed_record, summary_of
from memnet.spec import SpecError, TaskSpec, resolve
from memnet.train import evaluate, load_data, record_environment, train_run
from tasks.temporal_order import CLASSES, LEVELS

CPU = torch.device("cpu")
COLUMNS = {  # folder -> table title, model, options beyond hidden; chrono's horizon "level" = the level's longest sequence
    "rnn": {"title": "rnn", "model": "rnn", "options": {}},
    "gru": {"title": "gru", "model": "gru", "options": {}},
    "lstm": {"title": "lstm", "model": "lstm", "options": {}},
    "lstm-chrono": {"title": "lstm + chrono init", "model": "lstm", "options": {"chrono": "level"}},
}
TEMPORAL_TRAIN = {"optimizer": "adam", "lr": 0.01, "lr_halve_every": 0, "batch_size": 32}


def temporal_row(name: str, label: str, level: str, hidden: int, train: int, epochs: int, seeds: int) -> dict:
    """A row of the temporal table: folder `name`, table `label`, level, hidden units, train examples, epochs, seeds 0..n-1."""
    return {"name": name, "label": label, "level": level, "hidden": hidden, "train": train, "epochs": epochs, "seeds": seeds}


PLANS = {
    "full": {
        # Units: 4 in the course's EASY setting (ANCHORS: 4-unit RNN ~50-59%, LSTM 100%); 16 elsewhere, as 4
        # rarely learns HARD. NIGHTMARE (300-500 steps) gets one seed, 1000 examples and 6 epochs to fit the time budget.
        "temporal": {"rows": [temporal_row("easy-4-units", "easy, 4 units (course)", "easy", 4, 1000, 10, 3),
                              temporal_row("easy", "easy", "easy", 16, 1000, 10, 3),
                              temporal_row("normal", "normal", "normal", 16, 2000, 10, 3),
                              temporal_row("moderate", "moderate", "moderate", 16, 2000, 10, 3),
                              temporal_row("hard", "hard", "hard", 16, 2000, 10, 3),
                              temporal_row("nightmare", "nightmare", "nightmare", 16, 1000, 6, 1)],
                     "columns": COLUMNS, "train": TEMPORAL_TRAIN},
        "echo": {"delays": [1, 3, 5, 8, 10, 12, 15], "cells": ["RNN", "LSTM"], "seeds": 1,
                 "config": {"hidden": 16, "chunk": 20, "streams": 8, "steps": 10000, "epochs": 4, "lr": 0.01}},
        # test lengths to 40, four times the longest trained; "length": the attentions of issue 32 (memnet.models.pointer)
        # in the preset seq2seq-length, 3 seeds, at 10 symbols and at 20 (an alphabet size it was not chosen on)
        "seq2seq": {"tasks": ["copy", "reverse", "sort"], "spec": "train=5-10,test=5-40,size=10000,per_length=100",
                    "attentions": ["additive", "dot", "none"], "seeds": 1, "model": {"hidden": 128, "dim": 32},
                    "train": {"optimizer": "adam", "lr": 0.003, "lr_halve_every": 3, "batch_size": 64, "epochs": 8},
                    "length": {"preset": "seq2seq-length", "attentions": ["pointer", "shift"], "symbols": [10, 20], "seeds": 3,
                               **PRESETS["seq2seq-length"], "model": {}}},
    },
    "smoke": {
        "temporal": {"rows": [temporal_row("easy", "easy", "easy", 4, 64, 1, 2), temporal_row("hard", "hard", "hard", 4, 32, 1, 1)],
                     "columns": COLUMNS, "train": TEMPORAL_TRAIN},
        "echo": {"delays": [1, 3], "cells": ["RNN", "LSTM"], "seeds": 1,
                 "config": {"hidden": 4, "chunk": 10, "streams": 2, "steps": 100, "epochs": 1, "test_steps": 100}},
        "seq2seq": {"tasks": ["reverse", "sort"], "spec": "train=2-4,test=2-16,size=64,per_length=4",
                    "attentions": ["additive", "none"], "seeds": 1, "model": {"hidden": 8, "dim": 4},
                    "train": {"optimizer": "adam", "lr": 0.01, "lr_halve_every": 0, "batch_size": 32, "epochs": 1},
                    "length": {"preset": "seq2seq-length", "attentions": ["shift"], "symbols": [10, 4], "seeds": 2,
                               "model": {"dim": 4}, "train": {**PRESETS["seq2seq-length"]["train"], "epochs": 1}}},
    },
}


# ---- shared -----------------------------------------------------------------------------------

class Record:
    """OUT/sequences.json: the plan, and per command that ran it its environment and how many runs it trained per part."""

    def __init__(self, out: Path, plan: str, parts: list[str]):
        self.path = out / SEQUENCES_RECORD
        settings = recorded(PLANS[plan])
        self.data = read_json(self.path) if self.path.exists() else {"plan": plan, "settings": settings, "invocations": []}
        if self.data["plan"] != plan:
            raise SpecError(f"{out} holds the runs of the {self.data['plan']} plan, not {plan}; pick another --out")
        self.data["settings"] = settings  # a setting added since keeps the runs of the others
        self.invocation = {**environment(CPU), "parts": parts, "trained": {part: 0 for part in parts}}
        self.data["invocations"].append(self.invocation)
        self.save()

    def trained(self, part: str) -> None:
        self.invocation["trained"][part] += 1
        self.save()

    def save(self) -> None:
        write_json(self.path, self.data)


def recorded(plan: dict) -> dict:
    """The plan as the record keeps it: echo's config with EchoConfig's defaults filled in, so the tables
    say what ran even if a default changes later."""
    per_run = {"cell", "echo_step", "seed"}
    echo = {key: value for key, value in dataclasses.asdict(EchoConfig(**plan["echo"]["config"])).items() if key not in per_run}
    return {**plan, "echo": {**plan["echo"], "config": echo}}


def trained_run(spec, run_dir: Path, data, record: Record, part: str) -> dict:
    """The run's summary: read if it finished (its spec checked against `spec`), else trained or resumed now, and
    packed into OUT/runs.jsonl.gz. A packed run (a fresh clone has no run folders) is finished: its packed summary."""
    if not (run_dir / SUMMARY).exists() and is_finished(run_dir):
        if packed_record(run_dir).config.get("spec") != spec.to_dict():
            raise SpecError(f"{run_dir} is packed with another spec; nothing was changed. Pick another --out")
        return summary_of(run_dir)
    finished = (run_dir / SUMMARY).exists()
    summary = train_run(spec, run_dir, resume=True, progress=False, device="cpu", data=None if finished else data())
    if not finished:
        record.trained(part)
    if part != "seq2seq":  # a seq2seq run is whole once its by_length.json is written (bench_seq2seq packs it)
        pack(benchmark_of(run_dir), [run_dir])
    return summary


def trained_models(run_dirs: dict, figure: Path) -> dict | None:
    """{key: the trained model and data of run_dirs[key]}, or None (with a note: the figure is left as it is) when a
    checkpoint is not here, as in a fresh clone (checkpoints are not committed)."""
    missing = [str(run_dir) for run_dir in run_dirs.values() if not (run_dir / CHECKPOINT).exists()]
    if missing:
        print(f"{figure} left as it is: no checkpoint.pt in {', '.join(missing)}")
        return None
    return {key: load_run(run_dir) for key, run_dir in run_dirs.items()}


def save_figure(figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=110)


# ---- temporal order ---------------------------------------------------------------------------

def bench_temporal(settings: dict, out: Path, record: Record, plt) -> None:
    rows, columns = settings["rows"], settings["columns"]
    accuracies = {}  # (row, column) -> test accuracy of each seed
    for row in rows:
        task = {"name": f"temporal:{row['level']},train={row['train']}"}
        data = functools.cache(functools.partial(load_data, TaskSpec(**task)))  # once per row, only if a run trains
        for column, model in columns.items():
            horizon = LEVELS[row["level"]][0][1]
            options = {"hidden": row["hidden"], **{k: horizon if v == "level" else v for k, v in model["options"].items()}}
            spec = resolve(model["model"], None, options, {**settings["train"], "epochs": row["epochs"]}, task)
            summaries = [trained_run(spec.with_seed(seed), out / "runs" / "temporal" / row["name"] / column / f"seed-{seed}",
                                     data, record, "temporal") for seed in range(row["seeds"])]
            accuracies[row["name"], column] = [round(100 - s["test_error"]["all"], 2) for s in summaries]
            print(f"temporal {row['label']:24} {model['title']:20} test accuracy {accuracies[row['name'], column]}", flush=True)

    figure, axis = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(columns)
    for i, (column, model) in enumerate(columns.items()):
        values = [accuracies[row["name"], column] for row in rows]
        axis.bar([j + i * width for j in range(len(rows))], [statistics.mean(v) for v in values], width,
                 yerr=[statistics.stdev(v) if len(v) > 1 else 0 for v in values], label=model["title"], capsize=2)
    axis.axhline(25, color="gray", linestyle=":", linewidth=1)
    axis.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))], [row["label"] for row in rows], fontsize=8)
    axis.set_ylabel("test accuracy (%)")
    axis.set_title("Temporal order (chance = 25%)")
    axis.legend(fontsize=8)
    save_figure(figure, out / "temporal_order.png")
    drawn = [(rows[0], "lstm"), *[(row, "lstm-chrono") for row in rows if row["name"] == "hard"]]  # the LSTMs drawn, seed 0
    runs = trained_models({(row["label"], columns[column]["title"]): out / "runs" / "temporal" / row["name"] / column / "seed-0"
                           for row, column in drawn}, out / "hidden_units.png")
    if runs:
        hidden_heatmaps(runs, out, plt)


@torch.no_grad()
def hidden_heatmaps(runs: dict, out: Path, plt) -> None:
    """Every hidden unit of the LSTM at every step of the first test sequence, one panel per run."""
    figure, axes = plt.subplots(len(runs), 1, figsize=(12, 2.2 * len(runs) + 0.5), squeeze=False)
    for axis, ((label, title), run) in zip(axes[:, 0], runs.items()):
        first = run.data.splits["test"].rows(slice(0, 1))
        tokens = first.input[:, : first.lengths[0]]  # (1, L)
        states, _ = run.model.steps(tokens)  # (1, L, h)
        predicted = run.model(first).logits.argmax(-1).item()
        image = axis.imshow(states[0].T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        symbols = run.data.vocab.decode(tokens[0].tolist())
        marked = [i for i, s in enumerate(symbols) if s in "BEXY"] if len(symbols) > 20 else range(len(symbols))
        axis.set_xticks(list(marked), [symbols[i] for i in marked], fontsize=7)
        axis.set_ylabel("unit")
        axis.set_title(f"{title}, {label}: class {CLASSES[first.target[0]]}, predicted {CLASSES[predicted]}", fontsize=9)
        figure.colorbar(image, ax=axis, fraction=0.02)
    save_figure(figure, out / "hidden_units.png")


# ---- echo -------------------------------------------------------------------------------------

def echo_run(config: EchoConfig, run_dir: Path, record: Record) -> dict:
    """One echo run's summary: read if it finished (its config checked), else trained now (a few seconds)."""
    with hold(run_dir):
        if (run_dir / CONFIG).exists() and read_json(run_dir / CONFIG)["echo"] != dataclasses.asdict(config):
            raise SpecError(f"{run_dir} holds an echo run of another config; nothing was changed. Pick another --out")
        if is_finished(run_dir):  # in its folder, or packed
            return summary_of(run_dir)
        write_json(run_dir / CONFIG, {"echo": dataclasses.asdict(config), "environment": record_environment(run_dir, CPU)})
        result = train_echo(config)
        by_epoch = [round(100 * accuracy, 2) for accuracy in result["test_accuracy"]]
        summary = {"test_accuracy": by_epoch[-1], "test_accuracy_by_epoch": by_epoch, "seed": config.seed,
                   "device": device_name(CPU), "seconds": result["seconds"]}
        write_json(run_dir / SUMMARY, summary)
        pack(benchmark_of(run_dir), [run_dir])
    record.trained("echo")
    return summary


def bench_echo(settings: dict, out: Path, record: Record, plt) -> None:
    accuracy = {}  # (delay, cell) -> mean final test accuracy over seeds
    for delay in settings["delays"]:
        for cell in settings["cells"]:
            summaries = [echo_run(EchoConfig(cell=cell, echo_step=delay, seed=seed, **settings["config"]),
                                  out / "runs" / "echo" / cell.lower() / f"delay-{delay}" / f"seed-{seed}", record)
                         for seed in range(settings["seeds"])]
            accuracy[delay, cell] = statistics.mean(s["test_accuracy"] for s in summaries)
        print(f"echo delay {delay:3}: " + ", ".join(f"{cell} {accuracy[delay, cell]}" for cell in settings["cells"]), flush=True)
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for cell in settings["cells"]:
        axis.plot(settings["delays"], [accuracy[delay, cell] for delay in settings["delays"]], marker="o", label=cell)
    axis.axvline(settings["config"]["chunk"], color="gray", linestyle=":", linewidth=1)
    axis.set_xlabel("delay (steps)")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(f"Echo, {settings['config']['hidden']} units, chunks of {settings['config']['chunk']}")
    axis.legend()
    save_figure(figure, out / "echo.png")


# ---- seq2seq ----------------------------------------------------------------------------------

def exact_match_by_length(run_dir: Path) -> dict:
    """by_length.json of a finished seq2seq run: per test length, the share of sequences right under greedy decoding."""
    run = load_run(run_dir)
    test = run.data.splits["test"]
    right = ~evaluate(run.model, test)["wrong"]  # (n,) every symbol and the EOS right
    lengths = sorted(test.length.unique().tolist())
    return {"split": "test", "exact_match": {n: round(100 * right[test.length == n].float().mean().item(), 1) for n in lengths},
            "sequences": {n: int((test.length == n).sum()) for n in lengths}}


def bench_seq2seq(settings: dict, out: Path, record: Record, plt) -> None:
    by_length = {}  # (task, attention, symbols) -> exact match per length, mean over seeds
    data = {}  # task spec -> its data, loaded once and only if a run trains
    for row in seq2seq_rows(settings):
        task_options = {"name": f"{row['task']}:{row['spec']}"}
        data.setdefault(task_options["name"], functools.cache(functools.partial(load_data, TaskSpec(**task_options))))
        spec = resolve("seq2seq", row["preset"], {**row["model"], "attention": row["attention"]}, row["train"], task_options)
        seeds = []
        for seed in range(row["seeds"]):
            run_dir = out / row["folder"] / f"seed-{seed}"
            trained_run(spec.with_seed(seed), run_dir, data[task_options["name"]], record, "seq2seq")
            if packed_record(run_dir) is None and not (run_dir / BY_LENGTH).exists():  # written right after training
                write_json(run_dir / BY_LENGTH, exact_match_by_length(run_dir))  # (again if that was cut short)
            pack(out, [run_dir])
            seeds.append({int(n): v for n, v in packed_record(run_dir).extra[BY_LENGTH]["exact_match"].items()})
        key = row["task"], row["attention"], row["symbols"]
        by_length[key] = {n: statistics.mean(seed[n] for seed in seeds) for n in seeds[0]}
        print(f"seq2seq {row['task']:8} {row['attention']:9} {row['symbols']:3} symbols, exact match by length (mean of "
              f"{len(seeds)}) {by_length[key]}", flush=True)

    train_low, train_high = (int(n) for n in settings["spec"].split("train=")[1].split(",")[0].split("-"))
    figure, axes = plt.subplots(1, len(settings["tasks"]), figsize=(5 * len(settings["tasks"]), 3.5), squeeze=False)
    for axis, task in zip(axes[0], settings["tasks"]):
        for (row_task, attention, symbols), values in by_length.items():
            if row_task == task:
                axis.plot(list(values), list(values.values()), marker=".", linestyle="-" if symbols == 10 else "--",
                          label=attention if symbols == 10 else f"{attention}, {symbols} symbols")
        axis.axvline(train_high + 0.5, color="gray", linestyle=":", linewidth=1)
        axis.set_title(f"{task} (trained on lengths {train_low}-{train_high})")
        axis.set_xlabel("source length")
        axis.set_ylabel("exact match (%)")
        axis.legend(fontsize=7)
    save_figure(figure, out / "seq2seq_by_length.png")
    if "additive" in settings["attentions"]:
        runs = trained_models({task: out / "runs" / "seq2seq" / task / "additive" / "seed-0" for task in settings["tasks"]},
                              out / "alignment.png")
        if runs:
            alignments(runs, out / "alignment.png", plt, [train_high - 2, train_high + 3])
    if "shift" in settings.get("length", {}).get("attentions", []):  # the preset's model, seed 0, 10 symbols
        runs = trained_models({task: out / "runs" / "seq2seq" / task / "shift" / "seed-0" for task in settings["tasks"]},
                              out / "alignment_length.png")
        if runs:
            longest = int(settings["spec"].split("test=")[1].split(",")[0].split("-")[1])
            alignments(runs, out / "alignment_length.png", plt, [train_high, longest], "shift")


@torch.no_grad()
def alignments(runs: dict, path: Path, plt, lengths: list[int], attention: str = "additive") -> None:
    """Attention of one model per task over the source at each output step, on test sequences of `lengths`."""
    size = 4 if max(lengths) <= 20 else 6  # inches a panel: a 40-long source needs room for its symbols
    figure, axes = plt.subplots(len(runs), len(lengths), figsize=(size * len(lengths), 0.9 * size * len(runs)), squeeze=False)
    for row, (task, run) in enumerate(runs.items()):
        test = run.data.splits["test"]
        for column, n in enumerate(lengths):
            candidates = (test.length == n).nonzero()
            axis = axes[row, column]
            if not len(candidates):
                axis.set_axis_off()
                continue
            i = candidates[0].item()
            batch = test.rows(slice(i, i + 1))
            output = run.model(batch)
            steps = int((batch.target[0] != IGNORE_INDEX).sum())  # the target's symbols and its EOS
            weights = output.attention[0, :steps, :n]  # (t, s)
            source = run.data.vocab.decode(batch.source[0, :n].tolist())
            predicted = run.data.vocab.decode(output.logits[0, :steps].argmax(-1).tolist())
            axis.imshow(weights, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
            axis.set_xticks(range(n), source, fontsize=7 if n <= 20 else 5)
            axis.set_yticks(range(steps), predicted, fontsize=7 if n <= 20 else 5)
            right = predicted == run.data.vocab.decode([t for t in batch.target[0].tolist() if t != IGNORE_INDEX])
            axis.set_title(f"{task}, {attention}, length {n} ({'right' if right else 'wrong'})", fontsize=9)
            axis.set_xlabel("source")
            axis.set_ylabel("output (greedy)")
    save_figure(figure, path)


PARTS = {"temporal": bench_temporal, "echo": bench_echo, "seq2seq": bench_seq2seq}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(PARTS), action="append", help="run only this part (repeatable)")
    parser.add_argument("--smoke", action="store_true", help="tiny settings: check the script in seconds")
    parser.add_argument("--out", default="results/sequences", help="folder for the runs, tables and plots (default: results/sequences)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the budget is stated for one CPU thread
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    plan = "smoke" if args.smoke else "full"
    parts = args.only or list(PARTS)
    started, record = time.perf_counter(), Record(out, plan, parts)
    for name in parts:
        PARTS[name](record.data["settings"][name], out, record, plt)
        plt.close("all")
        print(f"{name}: {record.invocation['trained'][name]} runs trained now, records in {out / 'runs' / name}", flush=True)
    record.invocation["seconds"] = round(time.perf_counter() - started, 1)  # wall time of this command, plots included
    record.save()
    for path in write_tables(out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
