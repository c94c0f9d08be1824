"""`memnet serve`: an attention explorer for trained runs, as a Gradio app (the `memnet[serve]` extra).

    memnet serve runs/t2 runs/att2 runs/rev --port 7860      # http://127.0.0.1:7860

Tabs, and one HTTP endpoint:
- Browse: a run, a task, a split and a verdict (wrong / right / all answers); step through the
  questions. Each story sentence is shaded by its attention, one column per hop (or layer, step: what the
  model names its rows, memnet.models.output), with the weight as a number and a row for the weight on the
  empty memories (for models whose rows are distributions over them); a "steps" column where the model
  reports the steps each sentence took (the Universal Transformer); supporting facts are starred; the
  predicted and true answers and the 5 most probable answers.
- Ask & compare: type or edit a story (one sentence a line) and a question; one run answers, or two
  side by side.
- Sequences (when a seq2seq run is served): the decoder's alignment over a source sequence you type, with the
  run's attention and whether the source is longer than any it trained on (the pointer and shift attentions,
  preset seq2seq-length, keep their alignment past those lengths: docs/seq2seq-length.md).
- Run summary: per-task test error of every served run, how often each hop's most-attended sentence
  is a supporting fact, and the training curves of metrics.jsonl.
- `/answer` (story, question, run=None) -> {"answer", "top", "hops", "row", "empty", "steps", "sentences", "question",
  "dropped", "memory_size", "run"}: what `memnet.asking.ask` returns; a story the run cannot read raises a `gradio.Error`
  saying why (its message contains "unknown" and the words, for words the run never saw).

The page's logic lives elsewhere (`memnet.asking` answers typed stories, `memnet.inspection` browses a
split); this module only lays it out. Gradio is imported when the app is built, so `memnet` commands
that do not serve never pay for it.
"""

import argparse
import errno
import html
import importlib.util
import signal
import socket
import threading
import time

from memnet.asking import AskError, align_typed, ask
from memnet.batches import Seq2SeqBatch, StoryBatch
from memnet.inspection import Run, attend, load_run, matching, predict, pyplot, split_support
from memnet.models.output import attention_row
from memnet.run_record import metrics_of

VERDICTS = {"wrong answers": "wrong", "right answers": "right", "all": "all"}
NONE = "(none)"  # the second run of a comparison, when there is none
CSS = """
.attn table{border-collapse:collapse;margin:.4em 0} .attn td,.attn th{border:1px solid #ccc;padding:2px 7px;font-size:14px}
.attn td.w{text-align:right;min-width:3.2em;font-variant-numeric:tabular-nums} .attn .support td{font-weight:bold}
.attn .right{color:#070} .attn .wrong{color:#b00} .attn .note{background:#fff6d5;border:1px solid #e0c060;padding:4px 8px;margin:.4em 0}
.attn .error{background:#fde8e8;border:1px solid #d66;padding:6px 10px;margin:.4em 0} .attn .bar{background:#888;height:.8em;display:inline-block}
"""


# ---- the runs -------------------------------------------------------------------------------------------------

class Explorer:
    """The served runs by label (the folder as given on the command line) and what the page asks of them."""

    def __init__(self, runs: dict[str, Run]):
        self.runs = runs
        self.predicted = {}  # (label, split) -> predicted answer ids (n,), computed once: browsing filters by verdict

    def kind(self, label: str) -> str:
        batch = self.runs[label].data.splits["test"]
        return "story" if isinstance(batch, StoryBatch) else "seq2seq" if isinstance(batch, Seq2SeqBatch) else "other"

    def labels(self, kind: str) -> list[str]:
        return [label for label in self.runs if self.kind(label) == kind]

    def run(self, label: str | None, kind: str = "story") -> Run:
        """The run of `label` (None or "": the first served run of `kind`)."""
        served = self.labels(kind)
        if not label:
            if not served:
                raise AskError(f"no {kind} run is served; served: {', '.join(self.runs)}")
            label = served[0]
        if label not in self.runs:
            raise AskError(f"unknown run {label!r}; served runs: {', '.join(self.runs)}")
        if label not in served:
            raise AskError(f"run {label!r} is not a {kind} run; those are: {', '.join(served) or 'none'}")
        return self.runs[label]

    def tasks(self, label: str) -> list[str]:
        return ["all"] + [str(task) for task in sorted(set(self.runs[label].data.splits["test"].task.tolist()))]

    def matching(self, label: str, task: str, split: str, verdict: str) -> list[int]:
        run = self.run(label)
        if (label, split) not in self.predicted:
            self.predicted[label, split] = predict(run, split).logits.argmax(-1)
        return matching(run, split, None if task == "all" else int(task), VERDICTS[verdict], self.predicted[label, split])

    def browse(self, label: str, task: str, split: str, verdict: str, position: int) -> tuple[str, str, int, dict | None]:
        """(page fragment, where we are, the position clamped to the matches, the example shown or None)."""
        try:
            chosen = self.matching(label, task, split, verdict)
        except (AskError, ValueError) as error:
            return notice(str(error), "error"), "", 0, None
        what = f"{verdict if verdict != 'all' else 'questions'}" + ("" if task == "all" else f" of task {task}") + f", {split} split"
        if not chosen:
            return notice(f"no {what}: choose another filter"), f"0 {what}", 0, None
        position = max(0, min(position, len(chosen) - 1))
        example = attend(self.runs[label], split, [chosen[position]])[0]
        where = f"{position + 1} of {len(chosen)} {what} (example {example['index']}, {example['source'].split('/')[-1]})"
        return story_html(example), where, position, example

    def answer(self, story: str, question: str, label: str | None = None) -> dict:
        """The `/answer` endpoint: `asking.ask` of the chosen run, with the run's label."""
        return {**ask(self.run(label), story, question), "run": label or self.labels("story")[0]}

    def answer_html(self, label: str, story: str, question: str) -> str:
        if not label or label == NONE:
            return ""
        try:
            result = ask(self.run(label), story, question)
        except AskError as error:
            return notice(str(error), "error")
        note = "" if not result["dropped"] else (
            f"The story has {len(result['sentences']) + result['dropped']} sentences; the memory holds the "
            f"{result['memory_size']} most recent, so the first {result['dropped']} are left out.")
        return story_html({"sentences": result["sentences"], "attention": result["hops"] or None, "empty": result["empty"],
                           "row": result["row"], "steps": result["steps"], "supporting": [], "question": result["question"],
                           "predicted": result["answer"], "answer": None, "top": result["top"]}, title=label, note=note)

    def align_html(self, label: str, source: str) -> str:
        try:
            return alignment_html(align_typed(self.run(label, "seq2seq"), source))
        except (AskError, ValueError) as error:
            return notice(str(error), "error")

    def summary_html(self) -> str:
        return errors_html(self.runs) + support_html({label: self.runs[label] for label in self.labels("story")})


def load_runs(run_dirs: list[str], data_dir=None) -> dict[str, Run]:
    """Each named run folder, loaded once, by the name given (a folder named twice is served once)."""
    return {label: load_run(label, data_dir) for label in dict.fromkeys(run_dirs)}


# ---- page fragments (plain HTML, no Gradio) -------------------------------------------------------------------

def notice(text: str, kind: str = "note") -> str:
    return f"<div class='attn'><div class='{kind}'>{html.escape(text)}</div></div>"


def shaded(weight: float, colour: str = "220,50,30") -> str:
    """A table cell holding a weight, shaded by it (the red of `inspection.render_html`)."""
    ink = "#fff" if weight > 0.55 else "#000"
    return f"<td class='w' style='background:rgba({colour},{weight:.3f});color:{ink}'>{weight:.2f}</td>"


def story_html(example: dict, title: str = "", note: str = "") -> str:
    """A story, one column of shaded weights per hop (the model's rows), the empty memories' row where the model's
    rows are distributions over them, the steps each sentence took where the model reports them, the question and
    the answers.

    `example` is `inspection.attend`'s dict; "answer" None means there is no true answer (a typed story).
    """
    hops, row, steps = example["attention"] or [], html.escape(example.get("row", "hop")), example.get("steps")
    head = "".join(f"<th>{row} {hop + 1}</th>" for hop in range(len(hops))) + ("<th>steps</th>" if steps else "")
    rows = "".join(
        f"<tr class='{'support' if slot in example['supporting'] else ''}'>"
        + "".join(shaded(weights[slot]) for weights in hops)
        + (f"<td class='w'>{steps[slot]:.2f}</td>" if steps else "")
        + f"<td>{'★ ' if slot in example['supporting'] else ''}{html.escape(sentence)}</td></tr>"
        for slot, sentence in enumerate(example["sentences"]))
    if hops and example.get("empty"):
        rows += ("<tr>" + "".join(shaded(weight) for weight in example["empty"]) + ("<td></td>" if steps else "")
                 + "<td><i>(empty memories: read nothing)</i></td></tr>")
    table = (f"<table><tr>{head}<th>sentence{' (★ supporting fact)' if example['supporting'] else ''}</th></tr>{rows}</table>"
             if hops else "<p><i>this model returns no attention</i></p>")
    true = example["answer"]
    verdict = "" if true is None else ("right" if example["predicted"] == true else "wrong")
    answers = (f"<p>Question: <b>{html.escape(example['question'])}?</b></p>"
               f"<p>Predicted: <b class='{verdict}'>{html.escape(example['predicted'])}</b>"
               + ("" if true is None else f" &nbsp; true: <b>{html.escape(true)}</b> ({verdict})") + "</p>")
    top = "".join(f"<tr><td>{html.escape(word)}</td><td class='w'>{p:.3f}</td>"
                  f"<td><span class='bar' style='width:{8 * p:.2f}em'></span></td></tr>" for word, p in example["top"])
    return ("<div class='attn'>" + (f"<h3>{html.escape(title)}</h3>" if title else "")
            + (f"<div class='note'>{html.escape(note)}</div>" if note else "") + table + answers
            + f"<table><tr><th colspan=3>top {len(example['top'])} answers</th></tr>{top}</table></div>")


def alignment_html(example: dict) -> str:
    """Decoder steps (output symbols) down, source symbols across, each cell shaded by its weight."""
    head = "".join(f"<th>{html.escape(symbol)}</th>" for symbol in example["source"])
    rows = "".join(f"<tr><th>{html.escape(symbol)}</th>" + "".join(shaded(weight, "40,90,200") for weight in weights) + "</tr>"
                   for symbol, weights in zip(example["output"], example["attention"]))
    verdict = "right" if example["output"] == example["target"] else "wrong"
    return (f"<div class='attn'>{length_note(example)}<table><tr><th>output \\ source</th>{head}</tr>{rows}</table>"
            f"<p>Output: <b class='{verdict}'>{html.escape(' '.join(example['output']))}</b> &nbsp; "
            f"target: <b>{html.escape(' '.join(example['target']))}</b> ({verdict})</p></div>")


def length_note(example: dict) -> str:
    """A line above a typed sequence's alignment: the run's attention, and the source's length against the trained ones."""
    if "trained_lengths" not in example:
        return ""
    low, high = example["trained_lengths"]
    n = len(example["source"])
    where = f"beyond the lengths this run trained on ({low}-{high})" if n > high else f"within the lengths this run trained on ({low}-{high})"
    end = (" The last row reads nothing: every source position has been output, so the end follows."
           if example["mechanism"] in ("pointer", "shift") else "")
    return f"<p class='note'>Attention: {html.escape(str(example['mechanism']))}. Source length {n}: {where}.{end}</p>"


def table_html(columns: list[str], rows: list[list[str]]) -> str:
    return ("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows) + "</table>")


def errors_html(runs: dict[str, Run]) -> str:
    """Test error per task (rows) of every run (columns), from each run's summary.json."""
    errors = {label: run.summary.get("test_error", {}) for label, run in runs.items()}
    tasks = sorted({task for error in errors.values() for task in error if task != "all"}, key=int) + ["all"]
    rows = [[task] + [f"{errors[label][task]:.1f}" if task in errors[label] else "" for label in runs] for task in tasks]
    return "<div class='attn'><h3>Test error per task (%)</h3>" + table_html(["task", *runs], rows) + "</div>"


def support_html(runs: dict[str, Run]) -> str:
    """Per run, per task and hop (the run's rows): how often the most-attended sentence is a supporting fact (test split)."""
    parts = ["<div class='attn'><h3>Supporting-fact hit rate per hop (test split)</h3><p>The share of questions whose "
             "most-attended sentence is a supporting fact; a hop that weighs the empty memories above every sentence is a miss "
             "(a layer or step, for models that name their rows so, counts by its most-weighted sentence).</p>"]
    for label, run in runs.items():
        try:
            report = split_support(run, "test")
        except ValueError as error:  # a model without attention
            parts.append(f"<h4>{html.escape(label)}</h4><p>{html.escape(str(error))}</p>")
            continue
        hops, row = len(report["all"]), attention_row(run.model)
        parts.append(f"<h4>{html.escape(label)}</h4>" + table_html(
            ["task", *(f"{row} {hop + 1}" for hop in range(hops))],
            [[task, *(f"{100 * value:.1f}%" for value in values)] for task, values in report.items()]))
    return "".join(parts) + "</div>"


def curves_figure(runs: dict[str, Run]):
    """Loss and validation error per epoch, one line per run (metrics.jsonl)."""
    plt = pyplot()
    figure, (loss, error) = plt.subplots(1, 2, figsize=(10, 3.4))
    for label, run in runs.items():
        metrics = metrics_of(run.path)  # the run folder's, or its benchmark's pack where the folder has none
        epochs = [row["epoch"] + 1 for row in metrics]
        line, = loss.plot(epochs, [row["train_loss"] for row in metrics], ".-", label=f"{label} train")
        loss.plot(epochs, [row["valid_loss"] for row in metrics], ".--", color=line.get_color(), label=f"{label} valid")
        error.plot(epochs, [100 * row["valid_error"] for row in metrics], ".-", color=line.get_color(), label=label)
    loss.set(xlabel="epoch", ylabel="loss", title="loss (solid: train, dashed: valid)")
    error.set(xlabel="epoch", ylabel="error (%)", title="validation error")
    if runs:
        error.legend(fontsize=8)
    figure.tight_layout()
    return figure


# ---- the app --------------------------------------------------------------------------------------------------

NEEDS_GRADIO = "memnet serve needs Gradio: pip install 'memnet[serve]'"


def import_gradio():
    try:
        import gradio
    except ImportError:
        raise RuntimeError(NEEDS_GRADIO) from None
    return gradio


def build_app(explorer: Explorer):
    """The Gradio Blocks of the module docstring (not launched)."""
    gr = import_gradio()
    story_runs, sequence_runs = explorer.labels("story"), explorer.labels("seq2seq")

    def answer(story: str, question: str, run: str | None = None) -> dict:
        """Answer a story (one sentence a line) and a question with a served run (default: the first).
        Returns answer, top (answer, probability) pairs, hops (per hop, a weight per kept sentence), row (the word
        naming one of those rows: hop, layer, step), empty (per hop, the weight on the empty memories; empty for
        models whose rows are not distributions over them), steps (per kept sentence, the steps it took; null unless
        the model reports them), sentences and question (as the run read them), dropped (older sentences that did
        not fit in the memory), memory_size, run."""
        try:
            return explorer.answer(story, question, run)
        except AskError as error:
            raise gr.Error(str(error), print_exception=False) from None

    with gr.Blocks(title="memnet: attention explorer", analytics_enabled=False) as app:
        gr.Markdown("# memnet: attention explorer\nServing " + ", ".join(f"`{label}`" for label in explorer.runs)
                    + ". Darker cells hold more attention; ★ marks the supporting facts.")
        with gr.Tabs() as tabs:
            if story_runs:
                with gr.Tab("Browse", id="browse", elem_id="browse"):
                    with gr.Row():
                        run = gr.Dropdown(story_runs, value=story_runs[0], label="run", elem_id="browse-run")
                        task = gr.Dropdown(explorer.tasks(story_runs[0]), value="all", label="task", elem_id="browse-task")
                        split = gr.Radio(["train", "valid", "test"], value="test", label="split", elem_id="browse-split")
                        verdict = gr.Radio(list(VERDICTS), value="wrong answers", label="show", elem_id="browse-verdict")
                    with gr.Row():
                        previous = gr.Button("◀ previous", elem_id="browse-previous", scale=0)
                        where = gr.Markdown(elem_id="browse-where")
                        following = gr.Button("next ▶", elem_id="browse-next", scale=0)
                        edit = gr.Button("edit this story in Ask", elem_id="browse-edit", scale=0)
                    shown = gr.HTML(elem_id="browse-example")
                    position, current = gr.State(0), gr.State(None)

                    def stepper(by: int | None):
                        """previous / next move `by` one; a new filter (by None) starts at its first question."""
                        return lambda label, task, split, verdict, at: explorer.browse(label, task, split, verdict,
                                                                                       0 if by is None else at + by)

                    def pick_run(label, split, verdict):
                        return gr.Dropdown(choices=explorer.tasks(label), value="all"), *explorer.browse(label, "all", split, verdict, 0)

                    browsing = dict(inputs=[run, task, split, verdict, position], outputs=[shown, where, position, current],
                                    api_visibility="private")
                    app.load(stepper(0), **browsing)
                    previous.click(stepper(-1), **browsing)
                    following.click(stepper(1), **browsing)
                    for control in (task, split, verdict):
                        control.change(stepper(None), **browsing)
                    run.change(pick_run, [run, split, verdict], [task, shown, where, position, current], api_visibility="private")

                with gr.Tab("Ask & compare", id="ask", elem_id="ask"):
                    gr.Markdown("Type a story, one sentence a line, and a question; pick a second run to compare.")
                    with gr.Row():
                        first = gr.Dropdown(story_runs, value=story_runs[0], label="run", elem_id="ask-run")
                        second = gr.Dropdown([NONE, *story_runs], value=story_runs[1] if len(story_runs) > 1 else NONE,
                                             label="compare with", elem_id="ask-compare")
                    story = gr.Textbox(lines=6, label="story (one sentence a line)", elem_id="ask-story",
                                       value="Mary went to the kitchen.\nJohn moved to the garden.\nMary travelled to the office.")
                    question = gr.Textbox(label="question", value="Where is Mary?", elem_id="ask-question")
                    go = gr.Button("Answer", variant="primary", elem_id="ask-go")
                    with gr.Row():
                        left, right = gr.HTML(elem_id="ask-first"), gr.HTML(elem_id="ask-second")

                    def both(a, b, text, asked):
                        return explorer.answer_html(a, text, asked), explorer.answer_html(b, text, asked)

                    for trigger in (app.load, go.click, question.submit):
                        trigger(both, [first, second, story, question], [left, right], api_visibility="private")

                    def edit_in_ask(label, example):
                        """The browsed story and question, copied into Ask for editing."""
                        if example is None:
                            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
                        return "\n".join(example["sentences"]), example["question"] + "?", label, gr.Tabs(selected="ask")

                    edit.click(edit_in_ask, [run, current], [story, question, first, tabs], api_visibility="private")

            if sequence_runs:
                with gr.Tab("Sequences", id="sequences", elem_id="sequences"):
                    gr.Markdown("Type a source sequence of the run's symbols; the heatmap is the decoder's attention.")
                    with gr.Row():
                        sequence_run = gr.Dropdown(sequence_runs, value=sequence_runs[0], label="run", elem_id="seq-run")
                        first_source = explorer.runs[sequence_runs[0]].data.examples["test"][0][0]
                        source = gr.Textbox(" ".join(map(str, first_source)), label="source", elem_id="seq-source")
                    align = gr.Button("Align", variant="primary", elem_id="seq-go")
                    alignment = gr.HTML(elem_id="seq-alignment")
                    for trigger in (app.load, align.click, source.submit):
                        trigger(explorer.align_html, [sequence_run, source], alignment, api_visibility="private")

            with gr.Tab("Run summary", id="summary", elem_id="summary"):
                gr.HTML(explorer.summary_html())
                gr.Plot(curves_figure(explorer.runs), label="training curves")

        gr.api(answer, api_name="answer")
    return app


def launch(app, host: str, port: int) -> str:
    """Start serving in a background thread; the page's address."""
    try:
        _, url, _ = app.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True, css=CSS,
                               footer_links=["api"])
    except OSError as error:  # the port was taken between `check_address` and Gradio's own try
        if "empty port" in str(error):  # Gradio's words; its advice (GRADIO_SERVER_PORT) is not ours
            raise CannotServe(f"port {port} on {host} is in use; choose another with --port") from None
        raise CannotServe(f"cannot serve on {host}:{port}: {error}") from None
    return url


class CannotServe(RuntimeError):
    """The address to serve on is taken or not this machine's."""


def check_address(host: str, port: int) -> None:
    """Fail before loading any run when the address cannot be bound (as the server will bind it: SO_REUSEADDR)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise CannotServe(f"port {port} on {host} is in use; choose another with --port") from None
        raise CannotServe(f"cannot serve on {host}:{port}: {error.strerror or error}") from None


def stop_on_signals() -> None:
    """SIGINT and SIGTERM both stop `serve` as Ctrl-C does; SIGINT also where the shell that started it
    ignores it (a background job of a script), which Python would otherwise inherit."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers; a caller in another thread stops the server itself

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def serve(run_dirs: list[str], host: str = "127.0.0.1", port: int = 7860, data_dir=None) -> None:
    """Serve the runs until interrupted (Ctrl-C, SIGINT), then close the server."""
    if importlib.util.find_spec("gradio") is None:  # said before any slow work; importing it takes seconds
        raise RuntimeError(NEEDS_GRADIO)
    check_address(host, port)
    stop_on_signals()
    app = None
    try:
        explorer = Explorer(load_runs(run_dirs, data_dir))
        app = build_app(explorer)
        url = launch(app, host, port)
        print(f"memnet serve: {len(explorer.runs)} run(s) at {url} (Ctrl-C stops)", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:  # Ctrl-C, at any point: a server that started is closed
        pass
    finally:
        if app is not None:
            app.close()
    print("memnet serve: stopped", flush=True)


def add_serve_parser(commands) -> None:
    parser = commands.add_parser("serve", help="explore runs' attention in the browser (Gradio; needs memnet[serve])",
                                 description="Serve an attention explorer for the named run folders: browse questions by "
                                             "verdict, ask your own, compare two runs, see each run's summary; "
                                             "the /answer endpoint answers over HTTP.")
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders written by memnet train (only these are served)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--data-dir", help="read the runs' task data from here instead of where they were trained")
    parser.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> None:
    serve(args.runs, args.host, args.port, args.data_dir)
