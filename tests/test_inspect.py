"""Inspection of a tiny trained run: terminal, HTML, PNG, the supporting-fact report, and errors."""

import subprocess
import sys

import pytest
import torch

from memnet.inspection import Run, RunNotFound, attend, load_run, render_html, render_png, render_terminal, support_report
from memnet.models import build_model, model_config
from memnet.models.output import Output
from memnet.spec import resolve
from memnet.train import load_data, train_run


@pytest.fixture
def trained(babi_dir, tmp_path):
    out = tmp_path / "run"
    spec = resolve("memn2n", None, {"dim": 8, "hops": 2}, {"epochs": 2}, {"name": "babi:1", "data_dir": str(babi_dir)})
    train_run(spec, out, progress=False, device="cpu")
    return out


def memnet(*args):
    return subprocess.run([sys.executable, "-m", "memnet.cli", *map(str, args)], capture_output=True, text=True)


def test_terminal_html_and_png(trained, tmp_path):
    result = memnet("inspect", trained, "--index", 3, "--html", tmp_path / "a.html", "--png", tmp_path / "a.png")
    assert result.returncode == 0, result.stderr
    assert "hop 1" in result.stdout and "hop 2" in result.stdout and "question: where is" in result.stdout
    assert "predicted:" in result.stdout and "*" in result.stdout  # the supporting fact is marked
    page = (tmp_path / "a.html").read_text()
    assert page.count("<table>") == 2 and "★" in page and "rgba(220,50,30," in page
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_weight_on_empty_memories_is_shown_as_its_own_row():
    example = {"index": 0, "task": 6, "source": "test", "sentences": ["mary went to the office"], "supporting": [0],
               "question": "is mary in the garden", "answer": "no", "predicted": "no",
               "attention": [[0.25], [0.5]], "empty": [0.75, 0.5]}
    row = render_terminal(example).splitlines()[3]  # after the header and the one sentence
    assert row.endswith("(empty memories: read nothing)") and "0.75" in row and "0.50" in row
    assert render_html([example], "t").count("(empty memories: read nothing)") == 2  # one row per hop
    assert "empty" not in render_terminal({**example, "attention": [[1.0], [1.0]], "empty": [0.0, 0.0]})


def test_report_command(trained):
    result = memnet("inspect", trained, "--report")
    assert result.returncode == 0, result.stderr
    assert "| all |" in result.stdout and (trained / "attention_report_test.json").exists()


def test_support_report_on_a_hand_made_case():
    attention = torch.tensor([
        [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]],  # hop 1 -> slot 0 (a fact), hop 2 -> slot 2 (a fact)
        [[0.1, 0.8, 0.1], [0.6, 0.3, 0.1]],  # hop 1 -> slot 1 (not), hop 2 -> slot 0 (the fact)
        [[0.2, 0.2, 0.6], [0.2, 0.6, 0.2]],  # no supporting fact in memory: left out
    ])
    supporting = torch.tensor([[0, 2], [0, -1], [-1, -1]])
    report = support_report(attention, supporting, torch.tensor([1, 2, 2]))
    assert report == {"all": [0.5, 1.0], "1": [1.0, 1.0], "2": [0.0, 1.0]}


def test_support_report_counts_a_hop_on_the_empty_memories_as_a_miss():
    attention = torch.tensor([[[0.3, 0.1], [0.2, 0.1]]])  # hop 1: 0.6 on empty memories; hop 2: 0.7
    supporting = torch.tensor([[0]])
    assert support_report(attention, supporting, torch.tensor([6])) == {"all": [0.0, 0.0], "6": [0.0, 0.0]}
    attention = torch.tensor([[[0.5, 0.1], [0.2, 0.1]]])  # hop 1: the fact outweighs the empty share (0.4)
    assert support_report(attention, supporting, torch.tensor([6]))["all"] == [1.0, 0.0]


def untrained(babi_dir, model) -> Run:
    """A run of task 1 with a model never trained: a model's name (its defaults), or a call of the data's sizes."""
    data = load_data(resolve("memn2n", None, {}, {}, {"name": "babi:1", "data_dir": str(babi_dir)}).task)
    torch.manual_seed(0)
    built = build_model(model, model_config(model, {}), data.sizes) if isinstance(model, str) else model(data.sizes)
    return Run(babi_dir, built.eval(), data, {})


def test_a_model_whose_rows_are_steps_shows_step_columns_its_steps_per_sentence_and_no_empty_row(babi_dir, tmp_path):
    """The Universal Transformer: rows named "step", the question's rows sum below 1 (it also reads itself), which is
    no weight on empty memories, and each sentence's ponder steps."""
    examples = attend(untrained(babi_dir, "ut"), "test", [0, 1])
    example = examples[0]
    assert example["row"] == "step" and example["empty"] is None
    assert len(example["steps"]) == len(example["sentences"]) and all(1 <= steps <= 4 for steps in example["steps"])
    assert sum(example["attention"][0]) < 1
    shown = render_terminal(example)
    assert "step 1" in shown and "step 4" in shown and "steps" in shown and "hop" not in shown and "empty" not in shown
    assert f"{example['steps'][0]:>5.2f}  " + example["sentences"][0] in shown.splitlines()[2]
    page = render_html(examples, "t")
    assert "<th colspan=2>step 1</th>" in page and "<th>steps</th>" in page and "hop" not in page and "empty" not in page
    render_png(example, tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


class Gates(torch.nn.Module):
    """A gate-style model: per layer, a gate in [0, 1] on every sentence (0.1, but 0.9 on the first), no distribution."""

    ATTENTION_ROW = "layer"
    ATTENTION_SUMS_TO_ONE = False

    def __init__(self, classes: int):
        super().__init__()
        self.classes = classes

    def forward(self, batch) -> Output:
        gates = torch.full((len(batch), 2, batch.memory_mask.shape[1]), 0.1)  # (b, layers, m)
        gates[:, :, 0] = 0.9
        return Output(torch.zeros(len(batch), self.classes), gates * batch.memory_mask[:, None])


def test_a_gate_style_model_shows_no_empty_memories_and_reports_its_top_gate_alone(babi_dir):
    run = untrained(babi_dir, lambda sizes: Gates(sizes.vocab_size))
    example = attend(run, "test", [0])[0]
    assert example["empty"] is None and example["steps"] is None
    assert "layer 1" in render_terminal(example) and "empty" not in render_terminal(example)
    assert "empty" not in render_html([example], "t") and "<th colspan=2>layer 2</th>" in render_html([example], "t")
    gates = torch.tensor([[[0.9, 0.1, 0.1], [0.1, 0.1, 0.1]]])  # a gate-style row sums past 1 or below it
    assert support_report(gates, torch.tensor([[0]]), torch.tensor([1]), sums_to_one=False)["all"] == [1.0, 1.0]
    low = torch.tensor([[[0.3, 0.1], [0.0, 0.0]]])  # read as a distribution, 0.6 would be on the empty memories
    assert support_report(low, torch.tensor([[0]]), torch.tensor([6]))["all"] == [0.0, 0.0]
    assert support_report(low, torch.tensor([[0]]), torch.tensor([6]), sums_to_one=False)["all"] == [1.0, 0.0]  # a row of zeros reads nothing


def test_missing_or_incomplete_run_is_a_clear_error(tmp_path):
    with pytest.raises(RunNotFound, match="no run directory"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunNotFound, match="has no checkpoint.pt"):
        load_run(tmp_path / "empty")
    result = memnet("inspect", tmp_path / "nope")
    assert result.returncode == 2 and "no run directory" in result.stderr


def test_bad_index_says_the_range(trained):
    result = memnet("inspect", trained, "--index", 999)
    assert result.returncode == 2 and "out of range" in result.stderr


def test_html_page_renders_in_a_real_browser(trained, tmp_path):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "scripts"))
    from screenshot_html import find_chromium, screenshot

    if find_chromium() is None:
        pytest.skip("Chromium not installed (apt-get install chromium) — the browser check needs it")
    assert memnet("inspect", trained, "--html", tmp_path / "page.html").returncode == 0
    png = screenshot(tmp_path / "page.html", tmp_path / "page.png", size="800,600")
    from PIL import Image

    image = Image.open(png).convert("L")
    assert image.size == (800, 600)
    assert image.getextrema()[0] < 100  # dark pixels: text and tables were drawn, not a blank page


def test_seq2seq_alignment_in_terminal_and_png(tmp_path):
    spec = resolve("seq2seq", None, {"hidden": 16, "dim": 8}, {"epochs": 1, "optimizer": "adam", "lr": 0.003},
                   {"name": "reverse:train=3-4,test=3-4,size=120"})
    train_run(spec, tmp_path / "s2s", progress=False, device="cpu")
    result = memnet("inspect", tmp_path / "s2s", "--index", 2, "--png", tmp_path / "align.png")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    source = lines[0].split("source ")[1].split()
    assert 3 <= len(source) <= 4 and lines[1].split() == source  # one column per source symbol
    assert f"target: {' '.join(reversed(source))} <eos>" in result.stdout  # the true reversal is shown
    assert (tmp_path / "align.png").read_bytes()[:4] == b"\x89PNG"
