"""Look at what a trained model attends to: per-hop attention over story sentences.

`load_run` rebuilds a run's model and data from its checkpoint; `matching` picks a split's examples
by task and verdict; `attend` runs the model on chosen examples (`describe` on any encoded ones, such
as a story typed into `memnet serve`); the `render_*` functions show the result in the terminal, as an
HTML page or as a PNG heatmap; `support_report` measures how often each hop's most-attended sentence is a supporting fact.

A row of attention is a MemN2N hop unless the model says otherwise (memnet.models.output: `ATTENTION_ROW` names it,
"layer", "step", ...; `ATTENTION_SUMS_TO_ONE` False means its rows are no distribution over the sentences and the
empty memories, so no empty share is shown). A model that reports the steps each sentence took (`Output.steps`, the
Universal Transformer's adaptive halting) gets a "steps" column.
"""

import html
from dataclasses import dataclass
from pathlib import Path

import torch

from memnet.batches import IGNORE_INDEX, DataSizes
from memnet.models import build_model, model_config
from memnet.models.output import Output, attention_row, attention_sums_to_one
from memnet.records import load_checkpoint, read_json, write_atomic, write_json
from memnet.run_record import CHECKPOINT, SUMMARY, is_finished, summary_of
from tasks.registry import TaskData, load
from tasks.vocab import Vocab

BAR = " ▏▎▍▌▋▊▉█"  # eighths of a character cell
TOP = 5  # answers shown with their probabilities


class RunNotFound(FileNotFoundError):
    """A run directory that does not exist or has no checkpoint."""


@dataclass
class Run:
    path: Path
    model: torch.nn.Module
    data: TaskData
    summary: dict


def find_checkpoint(run_dir: Path) -> Path:
    """The checkpoint of a run, or of the best repeat when `run_dir` holds several."""
    if not run_dir.is_dir():
        raise RunNotFound(f"no run directory {run_dir}; train one with `memnet train --out {run_dir} ...`")
    if (run_dir / CHECKPOINT).exists():
        return run_dir / CHECKPOINT
    if (run_dir / SUMMARY).exists() and "best_run" in read_json(run_dir / SUMMARY):
        return find_checkpoint(run_dir / read_json(run_dir / SUMMARY)["best_run"])
    raise RunNotFound(f"{run_dir} has no checkpoint.pt: it is not a run directory, or its training never finished an epoch")


def load_run(run_dir: str | Path, data_dir=None) -> Run:
    """The trained model of a run with its task's data, encoded with the run's own vocabulary."""
    checkpoint = find_checkpoint(Path(run_dir))
    saved = load_checkpoint(checkpoint)  # a damaged file is named, with what to do
    if "spec" not in saved:
        raise ValueError(f"{checkpoint} was written by an older memnet, without a run spec; train the run again")
    task = dict(saved["spec"]["task"])
    if data_dir is not None:
        task["data_dir"] = str(data_dir)
    data = load(task.pop("name"), vocab=Vocab.from_state_dict(saved["vocab"]), **task)
    # the saved sizes, not the reloaded data's: a run's model is what it was trained as, even if the data moved on
    name, options = saved["spec"]["model"]["name"], saved["spec"]["model"]["options"]
    model = build_model(name, model_config(name, options), DataSizes(**saved["sizes"]))
    model.load_state_dict(saved["model"])
    model.eval()
    # the run folder's summary, or its benchmark's pack where the folder has none ({} for a run not finished)
    return Run(checkpoint.parent, model, data, summary_of(checkpoint.parent) if is_finished(checkpoint.parent) else {})


@torch.no_grad()
def attend(run: Run, split: str, indices: list[int]) -> list[dict]:
    """For each example: its sentences, question, answers, supporting slots and attention (hops, sentences)."""
    batch = run.data.splits[split].select(torch.tensor(indices))
    examples = [run.data.examples[split][index] for index in indices]
    shown = describe(run, batch, examples, indices)
    if shown[0]["attention"] is None:
        raise ValueError(f"model {type(run.model).__name__} returns no attention over story sentences")
    return shown


@torch.no_grad()
def describe(run: Run, batch, examples: list, indices: list) -> list[dict]:
    """`attend`'s view of any encoded bAbI examples (a split's rows, or a story someone typed): the
    model's answer, its `TOP` most probable answers, per-hop attention (None for a model without it) with the word
    naming a row ("row": "hop", "layer", "step", ...), the weight on the empty memories per row (None where the
    model's rows are not distributions over them), and the steps each sentence took (None unless the model says)."""
    out = run.model(batch)
    vocab, memory = run.data.vocab, run.data.sizes.memory_size
    # answers are words; a model may score more classes (MemN2N's release answers score its time words), never answers
    out = out._replace(logits=out.logits[..., : len(vocab)])
    probabilities = out.logits.softmax(-1)  # (n, classes)
    best, best_ids = probabilities.topk(min(TOP, probabilities.shape[-1]), -1)  # (n, TOP)
    label, sums_to_one, shown = attention_row(run.model), attention_sums_to_one(run.model), []
    for row, (index, example) in enumerate(zip(indices, examples)):
        sentences = [" ".join(words) for words in example.story[-memory:]]
        supporting = {slot for slot in batch.supporting[row].tolist() if slot >= 0}
        attention = None if out.attention is None else out.attention[row, :, : len(sentences)]  # (hops, sentences)
        shown.append({
            "index": index, "task": example.task, "source": example.source, "sentences": sentences,
            "question": " ".join(example.question), "answer": example.answer,
            "predicted": vocab.words[out.logits[row].argmax().item()],
            "top": [(vocab.words[i], round(p, 4)) for i, p in zip(best_ids[row].tolist(), best[row].tolist())],
            "supporting": sorted(supporting),
            "attention": None if attention is None else attention.tolist(),  # (hops, sentences)
            "row": label,
            "empty": None if attention is None or not sums_to_one else empty_share(out.attention[row]).tolist(),  # (hops,)
            "steps": None if out.steps is None else out.steps[row, : len(sentences)].tolist(),  # (sentences,)
        })
    return shown


@torch.no_grad()
def predict(run: Run, split: str, batch_size: int = 1000) -> Output:
    """The model's output over a whole split, in batches; attention is None for models without it."""
    outs = [run.model(batch) for batch in run.data.splits[split].chunks(batch_size)]
    attention = None if outs[0].attention is None else torch.cat([out.attention for out in outs])
    return Output(torch.cat([out.logits for out in outs]), attention)


def split_support(run: Run, split: str) -> dict[str, list[float]]:
    """`support_report` of a run's model over a whole split."""
    attention = predict(run, split).attention
    if attention is None:
        raise ValueError(f"model {type(run.model).__name__} returns no attention over story sentences")
    stories = run.data.splits[split]
    return support_report(attention, stories.supporting, stories.task, attention_sums_to_one(run.model))


def choose(run: Run, split: str, index: int | None, task: int | None, wrong: bool, count: int) -> list[int]:
    """Indices of the examples to show: one by index, else the first `count` matching task / wrongness."""
    total = len(run.data.splits[split])
    if index is not None:
        if not 0 <= index < total:
            raise ValueError(f"--index {index} is out of range: the {split} split has {total} examples (0-{total - 1})")
        return [index]
    chosen = matching(run, split, task, "wrong" if wrong else "all")
    if not chosen and wrong:
        raise ValueError("the model answers every selected example correctly; drop --wrong")
    return chosen[:count]


def matching(run: Run, split: str, task: int | None = None, verdict: str = "all",
             predicted: torch.Tensor | None = None) -> list[int]:
    """Indices of a split's examples of `task` (None: every task) that the model answers `verdict`:
    "wrong", "right" or "all". `predicted` (n,) are the split's predicted answers, when already known."""
    examples = run.data.splits[split]
    keep = torch.ones(len(examples), dtype=torch.bool)
    if task is not None:
        keep &= examples.task == task
        if not keep.any():
            raise ValueError(f"the run has no task {task} examples; its tasks are {sorted(set(examples.task.tolist()))}")
    if verdict != "all":
        if verdict not in ("wrong", "right"):
            raise ValueError(f"unknown verdict {verdict!r}; choose wrong, right or all")
        if predicted is None:
            predicted = predict(run, split).logits.argmax(-1)
        keep &= (predicted != examples.target) if verdict == "wrong" else (predicted == examples.target)
    return keep.nonzero()[:, 0].tolist()


def bar(weight: float, width: int = 10) -> str:
    eighths = round(max(0.0, min(1.0, weight)) * width * 8)
    return (BAR[-1] * (eighths // 8) + (BAR[eighths % 8] if eighths % 8 else "")).ljust(width)


def empty_share(attention: torch.Tensor) -> torch.Tensor:
    """The weight each hop put on MemN2N's empty memories (a read of nothing): what its row of
    attention over sentences (..., hops, m) leaves of 1."""
    return (1 - attention.sum(-1)).clamp(min=0)


def shows_empty(example: dict) -> bool:
    """Whether a hop put visible weight on empty memories (so a row for them is worth showing); never for a
    model whose rows are not distributions over them ("empty" None)."""
    return max(example.get("empty") or [0.0]) >= 0.005


def render_terminal(example: dict) -> str:
    hops, row, steps = len(example["attention"]), example.get("row", "hop"), example.get("steps")
    lines = [f"example {example['index']} (task {example['task']}, {example['source']})",
             "     " + "".join(f"{row + ' ' + str(h + 1):<17}" for h in range(hops)) + ("steps  " if steps else "")
             + "sentence   (* = supporting fact)"]
    for slot, sentence in enumerate(example["sentences"]):
        cells = "".join(f"{bar(example['attention'][h][slot])} {example['attention'][h][slot]:.2f}  " for h in range(hops))
        cells += f"{steps[slot]:>5.2f}  " if steps else ""
        mark = "*" if slot in example["supporting"] else " "
        lines.append(f"{slot + 1:>3} {mark}{cells}{sentence}")
    if shows_empty(example):
        lines.append("     " + "".join(f"{bar(weight)} {weight:.2f}  " for weight in example["empty"]) + "(empty memories: read nothing)")
    verdict = "right" if example["predicted"] == example["answer"] else "WRONG"
    lines += [f"question: {example['question']}?",
              f"predicted: {example['predicted']}   true: {example['answer']}   ({verdict})"]
    return "\n".join(lines)


def render_html(examples: list[dict], title: str) -> str:
    """A self-contained page: per example, one table per hop (or layer, step: the model's rows), colour intensity by
    weight, and a table of the steps each sentence took where the model gives them."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
             "body{font-family:sans-serif;margin:2em;max-width:70em} table{border-collapse:collapse;margin:.5em 1em 1em 0;display:inline-table;vertical-align:top}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:14px} .support{font-weight:bold} .w{text-align:right;width:3.5em}"
             ".right{color:#070} .wrong{color:#b00}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p>Attention of every {html.escape(examples[0].get('row', 'hop') if examples else 'hop')} "
             "over the story sentences; darker is more weight. Supporting facts are in bold and marked ★.</p>"]
    for example in examples:
        row = html.escape(example.get("row", "hop"))
        verdict = "right" if example["predicted"] == example["answer"] else "wrong"
        parts.append(f"<h2>Example {example['index']} (task {example['task']})</h2>"
                     f"<p>Question: <b>{html.escape(example['question'])}?</b> Predicted: <b class='{verdict}'>"
                     f"{html.escape(example['predicted'])}</b>, true: <b>{html.escape(example['answer'])}</b></p>")
        for hop, weights in enumerate(example["attention"]):
            rows = "".join(
                f"<tr class='{'support' if slot in example['supporting'] else ''}'>"
                f"<td class='w' style='background:rgba(220,50,30,{weight:.3f})'>{weight:.2f}</td>"
                f"<td>{'★ ' if slot in example['supporting'] else ''}{html.escape(sentence)}</td></tr>"
                for slot, (sentence, weight) in enumerate(zip(example["sentences"], weights)))
            if shows_empty(example):
                weight = example["empty"][hop]
                rows += (f"<tr><td class='w' style='background:rgba(220,50,30,{weight:.3f})'>{weight:.2f}</td>"
                         "<td><i>(empty memories: read nothing)</i></td></tr>")
            parts.append(f"<table><tr><th colspan=2>{row} {hop + 1}</th></tr>{rows}</table>")
        if example.get("steps"):
            rows = "".join(f"<tr class='{'support' if slot in example['supporting'] else ''}'><td class='w'>{steps:.2f}</td>"
                           f"<td>{'★ ' if slot in example['supporting'] else ''}{html.escape(sentence)}</td></tr>"
                           for slot, (sentence, steps) in enumerate(zip(example["sentences"], example["steps"])))
            parts.append(f"<table><tr><th>steps</th><th>sentence</th></tr>{rows}</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def pyplot():
    """matplotlib's pyplot on a file-only backend (no screen needed), imported when a figure is asked for."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: str | Path) -> None:
    """Write a PNG atomically: a half-written figure never replaces a good one."""
    figure.tight_layout()
    tmp = Path(path).with_suffix(".tmp.png")
    try:
        figure.savefig(tmp, dpi=110)
        tmp.replace(path)
    except BaseException:  # a full disk: no half-written figure left behind
        tmp.unlink(missing_ok=True)
        raise
    finally:
        pyplot().close(figure)


def render_png(example: dict, path: str | Path) -> None:
    """A heatmap of attention, sentences down the side and hops (the model's rows) across, supporting facts starred."""
    plt = pyplot()
    weights = torch.tensor(example["attention"]).T  # (sentences, hops)
    labels = [("★ " if slot in example["supporting"] else "") + sentence for slot, sentence in enumerate(example["sentences"])]
    if shows_empty(example):
        weights = torch.cat([weights, torch.tensor(example["empty"])[None]])
        labels.append("(empty memories)")
    figure, axes = plt.subplots(figsize=(3 + 0.9 * weights.shape[1] + 0.07 * max(map(len, labels)), 1.2 + 0.3 * len(labels)))
    image = axes.imshow(weights, cmap="Reds", vmin=0, vmax=1, aspect="auto")
    axes.set_xticks(range(weights.shape[1]), [f"{example.get('row', 'hop')} {h + 1}" for h in range(weights.shape[1])])
    axes.set_yticks(range(len(labels)), labels)
    for (row, col), weight in zip(((r, c) for r in range(weights.shape[0]) for c in range(weights.shape[1])), weights.flatten()):
        axes.text(col, row, f"{weight:.2f}", ha="center", va="center", fontsize=8, color="white" if weight > 0.5 else "black")
    axes.set_title(f"Q: {example['question']}?  predicted: {example['predicted']}  true: {example['answer']}", fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.04)
    save_figure(figure, path)


def align(run: Run, split: str, index: int) -> dict:
    """A seq2seq example under greedy decoding: source, output and target symbols, and the alignment (t, s)."""
    return aligned(run, run.data.splits[split].rows(slice(index, index + 1)), index)


@torch.no_grad()
def aligned(run: Run, batch, index) -> dict:
    """`align`'s view of the first row of any encoded Seq2SeqBatch (a split's row, or a sequence someone typed)."""
    out = run.model(batch)
    if out.attention is None:
        raise ValueError("this seq2seq model has no attention (attention='none'): nothing to align")
    words = run.data.vocab.words
    source = [words[i] for i in batch.source[0][batch.source_mask[0]].tolist()]
    steps = int((batch.target[0] != IGNORE_INDEX).sum())  # the target and its end symbol
    return {"index": index, "source": source, "target": [words[i] for i in batch.target[0, :steps].tolist()],
            "output": [words[i] for i in out.logits[0, :steps].argmax(-1).tolist()],
            "attention": out.attention[0, :steps, : len(source)].tolist()}  # (t, s)


def render_alignment(example: dict) -> str:
    """Decoder steps down, source positions across, weight as shade."""
    shades = " ░▒▓█"
    lines = [f"example {example['index']}: source {' '.join(example['source'])}",
             "        " + "".join(f"{symbol:>4}" for symbol in example["source"])]
    for step, (symbol, weights) in enumerate(zip(example["output"], example["attention"])):
        cells = "".join(f"{shades[min(4, int(weight * 5))] * 3:>4}" for weight in weights)
        lines.append(f"{step + 1:>3} {symbol:>4}{cells}")
    verdict = "right" if example["output"] == example["target"] else "WRONG"
    lines.append(f"output: {' '.join(example['output'])}   target: {' '.join(example['target'])}   ({verdict})")
    return "\n".join(lines)


def render_alignment_png(example: dict, path: str | Path) -> None:
    """Heatmap of the alignment: decoder steps (output symbols) by source positions."""
    plt = pyplot()
    weights = torch.tensor(example["attention"])  # (t, s)
    figure, axes = plt.subplots(figsize=(1.5 + 0.45 * weights.shape[1], 1.2 + 0.45 * weights.shape[0]))
    axes.imshow(weights, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(weights.shape[1]), example["source"])
    axes.set_yticks(range(weights.shape[0]), example["output"])
    axes.set_xlabel("source position")
    axes.set_ylabel("decoder step (output)")
    save_figure(figure, path)


@torch.no_grad()
def support_report(attention: torch.Tensor, supporting: torch.Tensor, task: torch.Tensor,
                   sums_to_one: bool = True) -> dict[str, list[float]]:
    """Per task (and 'all'), per hop: the fraction of examples whose most-attended slot is a supporting fact.

    attention (n, hops, m), supporting (n, s) slots with -1 for none, task (n,). Examples with no
    supporting fact in memory are left out. MemN2N's empty memories hold the weight missing from a
    row; a hop that puts more on them than on any sentence read nothing, so it counts as a miss.
    With `sums_to_one` False (the model's `ATTENTION_SUMS_TO_ONE`: its rows are gates, or weights that
    also fall outside the sentences) a row's most-weighted sentence counts alone; a row of zeros (a
    halted Universal Transformer's step) read nothing and is a miss.
    """
    top_weight, top = attention.max(-1)  # (n, hops)
    reads_a_sentence = top_weight >= empty_share(attention) if sums_to_one else top_weight > 0
    hit = (top[:, :, None] == supporting[:, None, :]).any(-1) & reads_a_sentence  # (n, hops)
    has_support = (supporting >= 0).any(-1)  # (n,)
    report = {}
    for name, rows in [("all", has_support)] + [(str(t), has_support & (task == t)) for t in sorted(set(task.tolist()))]:
        if rows.any():
            report[name] = [round(value, 4) for value in hit[rows].float().mean(0).tolist()]
    return report


def run_report(run: Run, split: str) -> dict[str, list[float]]:
    report = split_support(run, split)
    write_json(run.path / f"attention_report_{split}.json", report)
    row = attention_row(run.model)
    miss = (f" (a {row} that weighs the empty memories above every sentence counts as a miss)" if attention_sums_to_one(run.model)
            else f" (its most-weighted sentence; a {row} that weighs none counts as a miss)")
    lines = [f"Share of {split} questions whose most-attended sentence is a supporting fact, per {row}{miss}", "",
             "| task | " + " | ".join(f"{row} {h + 1}" for h in range(len(report["all"]))) + " |",
             "|---" * (len(report["all"]) + 1) + "|"]
    lines += [f"| {task} | " + " | ".join(f"{100 * v:.1f}%" for v in values) + " |" for task, values in report.items()]
    write_atomic(run.path / f"attention_report_{split}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return report
