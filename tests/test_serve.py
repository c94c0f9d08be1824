"""`memnet serve`: the /answer endpoint through gradio_client, the page in a real browser, the command's errors
and its shutdown. Three tiny runs (MemN2N, the attentive reader, seq2seq) are trained here, served once
for the module on 127.0.0.1 and closed at the end."""

import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="memnet serve needs the serve extra: pip install -e '.[serve]'")
from gradio_client import Client  # noqa: E402  (after the skip: gradio_client comes with gradio)
from gradio_client.exceptions import AppError  # noqa: E402

from memnet.asking import AskError, align_typed  # noqa: E402
from memnet.cli import main  # noqa: E402
from memnet.inspection import load_run  # noqa: E402
from memnet.serve import CannotServe, Explorer, build_app, curves_figure, launch, load_runs  # noqa: E402
from memnet.spec import resolve  # noqa: E402
from memnet.train import train_run  # noqa: E402
from tasks.babi import Example, tokenize  # noqa: E402
from tasks.babi_tensors import encode  # noqa: E402
from tests.conftest import write_task  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import serve_screenshot as browser  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # Gradio's own use of pandas, not ours

STORY = "Mary went to the kitchen.\nJohn went to the garden.\nMary went to the office."
QUESTION = "Where is Mary?"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, str]:
    """{"memn2n", "attentive", "seq2seq"} -> a trained run folder (a few seconds in all)."""
    root = tmp_path_factory.mktemp("serve")
    write_task(root / "babi" / "en", "qa1_single-supporting-fact_train.txt", 40, seed=1)
    write_task(root / "babi" / "en", "qa1_single-supporting-fact_test.txt", 10, seed=2)
    babi = {"name": "babi:1", "data_dir": str(root / "babi")}
    specs = {
        "memn2n": resolve("memn2n", None, {"dim": 8, "hops": 2}, {"epochs": 2}, babi),
        "attentive": resolve("attentive", "attentive", {"dim": 8, "hidden": 8}, {"epochs": 1}, babi),
        "seq2seq": resolve("seq2seq", None, {"hidden": 16, "dim": 8}, {"epochs": 1, "optimizer": "adam", "lr": 0.003},
                           {"name": "reverse:train=2-4,test=2-6,size=64,per_length=4"}),
    }
    for name, spec in specs.items():
        train_run(spec, root / name, progress=False, device="cpu")
    return {name: str(root / name) for name in specs}


@pytest.fixture(scope="module")
def served(runs):
    """(url, explorer) of the three runs, served on a free port of 127.0.0.1 until the module ends."""
    explorer = Explorer(load_runs(list(runs.values())))
    app = build_app(explorer)
    url = launch(app, "127.0.0.1", browser.free_port())
    yield url, explorer
    app.close()


@pytest.fixture(scope="module")
def client(served):
    """A gradio_client on the served app. It would ask the Hugging Face Hub for a registry of agents and
    send it telemetry: offline mode (read when called, so set here whatever imported the hub first) stops both."""
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        patch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
        yield Client(served[0], verbose=False)


def reference_answer(run_dir: str, sentences: list[str], question: str) -> tuple[str, list[float]]:
    """The answer and top-5 probabilities computed straight from the model on an Example built by hand."""
    run = load_run(run_dir)
    example = Example(story=tuple(map(tokenize, sentences)), question=tokenize(question), answer="<pad>", supporting=(),
                      task=1, story_id=0, source="test")
    logits = run.model(encode([example], run.data.vocab, run.data.sizes.memory_size)).logits[0]
    probabilities = logits.softmax(-1)
    return run.data.vocab.words[logits.argmax()], probabilities.sort(descending=True).values[:5].tolist()


def test_answers_a_hand_written_story(client, runs):
    result = client.predict(story=STORY, question=QUESTION, api_name="/answer")
    answer, top = reference_answer(runs["memn2n"], STORY.splitlines(), QUESTION)
    assert result["answer"] == answer == result["top"][0][0]
    assert [p for _, p in result["top"]] == pytest.approx(top, abs=1e-4)
    assert result["run"] == runs["memn2n"]  # the first served run answers when none is named
    assert result["sentences"] == ["mary went to the kitchen", "john went to the garden", "mary went to the office"]


def test_each_hop_weights_the_sentences_and_the_empty_memories_to_one(client):
    result = client.predict(story=STORY, question=QUESTION, api_name="/answer")
    assert len(result["hops"]) == len(result["empty"]) == 2  # the run has 2 hops
    for weights, empty in zip(result["hops"], result["empty"]):
        assert len(weights) == 3 and empty > 0  # the memory holds more slots than this story fills
        assert sum(weights) + empty == pytest.approx(1, abs=1e-5)


def test_unknown_words_are_listed_and_the_server_keeps_serving(client):
    with pytest.raises(AppError, match="unknown words .*flew, moon, zorg"):
        client.predict(story="Mary flew to the moon.", question="Where is Zorg?", api_name="/answer")
    assert client.predict(story=STORY, question=QUESTION, api_name="/answer")["answer"]


@pytest.mark.parametrize("story, question, message", [("", QUESTION, "the story is empty"), (" \n.\n", QUESTION, "the story is empty"),
                                                       (STORY, "  ?", "the question is empty")])
def test_an_empty_story_or_question_is_a_message(client, story, question, message):
    with pytest.raises(AppError, match=message):
        client.predict(story=story, question=question, api_name="/answer")


def test_a_story_longer_than_the_memory_keeps_its_most_recent_sentences(client, served, runs):
    memory = load_run(runs["memn2n"]).data.sizes.memory_size
    lines = ["John went to the hallway."] * 3 + ["Mary went to the garden."] * (memory - 1) + ["John went to the office."]
    result = client.predict(story="\n".join(lines), question="Where is John?", api_name="/answer")
    assert result["dropped"] == 3 and len(result["sentences"]) == memory == len(result["hops"][0])
    assert result["sentences"][0] == "mary went to the garden" and result["sentences"][-1] == "john went to the office"
    answer, top = reference_answer(runs["memn2n"], lines[3:], "Where is John?")  # what the model says to the kept part
    assert result["answer"] == answer and [p for _, p in result["top"]] == pytest.approx(top, abs=1e-4)
    page = served[1].answer_html(runs["memn2n"], "\n".join(lines), "Where is John?")
    assert f"the memory holds the {memory} most recent, so the first 3 are left out" in page


def test_two_runs_answer_the_same_question_side_by_side(client, served, runs):
    memn2n = client.predict(story=STORY, question=QUESTION, run=runs["memn2n"], api_name="/answer")
    attentive = client.predict(story=STORY, question=QUESTION, run=runs["attentive"], api_name="/answer")
    assert len(memn2n["hops"]) == 2 and len(attentive["hops"]) == 1  # the attentive reader reads once
    assert sum(attentive["hops"][0]) == pytest.approx(1, abs=1e-5) and attentive["empty"] == pytest.approx([0.0], abs=1e-6)  # float rounding of 1 - sum
    assert attentive["answer"] == reference_answer(runs["attentive"], STORY.splitlines(), QUESTION)[0]
    explorer = served[1]
    left, right = explorer.answer_html(runs["memn2n"], STORY, QUESTION), explorer.answer_html(runs["attentive"], STORY, QUESTION)
    assert "<th>hop 2</th>" in left and "<th>hop 2</th>" not in right and "<th>hop 1</th>" in right
    with pytest.raises(AppError, match="unknown run 'nope'; served runs: "):
        client.predict(story=STORY, question=QUESTION, run="nope", api_name="/answer")
    with pytest.raises(AppError, match="is not a story run"):
        client.predict(story=STORY, question=QUESTION, run=runs["seq2seq"], api_name="/answer")


def test_browse_steps_through_wrong_right_or_all_answers(served, runs):
    explorer, label = served[1], runs["memn2n"]
    run = explorer.runs[label]
    for verdict, right in [("wrong answers", False), ("right answers", True)]:
        page, where, position, example = explorer.browse(label, "all", "test", verdict, 0)
        if example is None:  # the tiny model answers none of them this way
            assert "no " + verdict in page
            continue
        assert (example["predicted"] == example["answer"]) is right and where.startswith("1 of ")
        assert ("(right)" if right else "(wrong)") in page and "★" in page and "(empty memories: read nothing)" in page
    predicted = explorer.predicted[label, "test"]
    wrong = int((predicted != run.data.splits["test"].target).sum())
    _, where, position, _ = explorer.browse(label, "1", "test", "wrong answers", 10_000)
    assert position == wrong - 1 and where.startswith(f"{wrong} of {wrong} wrong answers of task 1")
    page, _, _, example = explorer.browse(label, "all", "test", "all", -5)
    assert example["index"] == 0 and "top 5 answers" in page


def test_a_typed_sequence_is_aligned(served, runs):
    example = align_typed(load_run(runs["seq2seq"]), "3 1 4")
    assert example["source"] == ["3", "1", "4"] and example["target"] == ["4", "1", "3", "<eos>"]
    assert len(example["attention"]) == 4 and all(sum(row) == pytest.approx(1, abs=1e-5) for row in example["attention"])
    page = served[1].align_html(runs["seq2seq"], "3 1 4")
    assert page.count("rgba(40,90,200,") == 12 and "target: <b>4 1 3 &lt;eos&gt;</b>" in page
    assert "unknown symbol: x" in served[1].align_html(runs["seq2seq"], "3 x")
    with pytest.raises(AskError, match="not a sequence-to-sequence run"):
        align_typed(load_run(runs["memn2n"]), "3 1 4")


def test_a_typed_sequence_longer_than_training_is_aligned_by_the_shift_attention(tmp_path):
    """The Sequences tab with a run of the preset seq2seq-length, trained on lengths 2-4, and a typed 12-long source."""
    spec = resolve("seq2seq", "seq2seq-length", {"dim": 8}, {"epochs": 2, "batch_size": 32},
                   {"name": "reverse:train=2-4,test=2-4,size=2000,per_length=4"})
    train_run(spec, tmp_path / "shift", progress=False, device="cpu")
    label, typed = str(tmp_path / "shift"), "3 1 4 1 5 9 2 6 5 3 5 8"
    page = Explorer(load_runs([label])).align_html(label, typed)
    assert f"<b class='right'>{' '.join(reversed(typed.split()))} &lt;eos&gt;</b>" in page  # right, three times as long
    assert "Attention: shift. Source length 12: beyond the lengths this run trained on (2-4)." in page
    assert "The last row reads nothing" in page and page.count("rgba(40,90,200,") == 13 * 12  # every step, every symbol
    assert "within the lengths this run trained on (2-4)" in Explorer(load_runs([label])).align_html(label, "3 1 4")


def test_a_universal_transformer_is_shown_by_steps_with_its_steps_per_sentence_and_no_empty_memories(babi_dir):
    """Built in this process, untrained: its rows are named "step" (memnet.models.output), its rows over the
    sentences are no distribution (the question reads itself too), and it reports each sentence's ponder steps."""
    import json

    import torch

    from memnet.inspection import Run
    from memnet.models import build_model, model_config
    from memnet.serve import support_html
    from memnet.train import load_data

    data = load_data(resolve("ut", "ut", {}, {}, {"name": "babi:1", "data_dir": str(babi_dir)}).task)
    torch.manual_seed(0)
    explorer = Explorer({"ut": Run(babi_dir, build_model("ut", model_config("ut", {}), data.sizes).eval(), data, {})})
    result = explorer.answer(STORY, QUESTION, "ut")
    assert result["row"] == "step" and result["empty"] == [] and len(result["hops"]) == 4
    assert len(result["steps"]) == 3 and all(1 <= steps <= 4 for steps in result["steps"])
    json.dumps(result)  # what /answer sends
    page = explorer.answer_html("ut", STORY, QUESTION)
    assert "<th>step 1</th>" in page and "<th>step 4</th>" in page and "<th>steps</th>" in page
    assert "hop" not in page and "empty memories" not in page
    browsed, _, _, example = explorer.browse("ut", "all", "test", "all", 0)
    assert "<th>step 1</th>" in browsed and "<th>steps</th>" in browsed and example["empty"] is None
    assert "<th>step 4</th>" in support_html(explorer.runs)


def test_run_summary_has_errors_hit_rates_and_curves(served, runs):
    explorer = served[1]
    page = explorer.summary_html()
    for name in ("memn2n", "attentive", "seq2seq"):
        error = explorer.runs[runs[name]].summary["test_error"]["all"]
        assert f"<th>{runs[name]}</th>" in page and f"<td>{error:.1f}</td>" in page
    assert page.count("<th>hop 1</th>") == 2 and page.count("<th>hop 2</th>") == 1  # hit rates of the two story runs
    figure = curves_figure(explorer.runs)
    assert [len(axes.lines) for axes in figure.axes] == [6, 3]  # train and valid loss, and valid error, per run
    assert len(figure.axes[0].lines[0].get_xdata()) == 2  # the MemN2N run's 2 epochs


def test_the_page_in_a_real_browser(served, runs, tmp_path):
    if browser.find_browser() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install chromium and chromium-driver (.ci/run)")
        pytest.skip("Chromium or chromedriver missing: apt-get install chromium chromium-driver")
    pytest.importorskip("selenium", reason="the browser test needs the dev extra: pip install -e '.[dev]'")
    url, explorer = served
    driver = browser.open_browser(1280, 1100)
    try:
        browser.open_explorer(driver, url)
        browser.click_choice(driver, "browse-verdict", "all")  # then back: the page follows the filter
        browser.wait_for(driver, lambda d: "test split" in d.find_element("id", "browse-where").text
                         and "wrong answers" not in d.find_element("id", "browse-where").text, "the filter 'all'")
        browser.click_choice(driver, "browse-verdict", "wrong answers")
        browser.wait_for(driver, lambda d: "wrong answers" in d.find_element("id", "browse-where").text, "the wrong answers")
        browser.by_id(driver, "browse-next").click()
        _, where, _, example = explorer.browse(runs["memn2n"], "all", "test", "wrong answers", 1)
        browser.wait_for(driver, lambda d: d.find_element("id", "browse-where").text.startswith(where[:8]), "the second wrong answer")
        shown = browser.inner_html(driver, "browse-example")
        assert "(wrong)" in shown and f"<b class=\"wrong\">{example['predicted']}</b>" in shown
        assert shown.count("rgba(220,50,30,") >= 2 * (len(example["sentences"]) + 1)  # every hop's cells shaded
        browser.by_id(driver, "ask-button").click()  # the tab
        browser.type_text(driver, "ask-story", "John went to the hallway.\nMary went to the garden.")
        browser.type_text(driver, "ask-question", "Where is John?")
        browser.by_id(driver, "ask-go").click()
        expected = explorer.answer("John went to the hallway.\nMary went to the garden.", "Where is John?")["answer"]
        browser.wait_for(driver, lambda d: "john went to the hallway" in browser.inner_html(d, "ask-first")
                         and f">{expected}</b>" in browser.inner_html(d, "ask-first"), "the typed story's answer")
        assert "john went to the hallway" in browser.inner_html(driver, "ask-second")  # compared with the attentive reader
        png = tmp_path / "explorer.png"
        driver.save_screenshot(str(png))
    finally:
        driver.quit()
    from PIL import Image

    image = Image.open(png).convert("L")
    assert image.size[0] == 1280 and image.getextrema()[0] < 100  # dark pixels: the page was drawn


def test_serve_without_such_a_run_or_on_a_used_port_says_so(runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["serve", str(tmp_path / "nope"), "--port", str(browser.free_port())])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"memnet serve: error: no run directory {tmp_path / 'nope'}; "
                                                            f"train one with `memnet train --out {tmp_path / 'nope'} ...`"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_:
            main(["serve", runs["memn2n"], "--port", str(port)])
        with pytest.raises(CannotServe, match=f"port {port} on 127.0.0.1 is in use; choose another with --port"):
            launch(build_app(Explorer({})), "127.0.0.1", port)  # taken after the check: Gradio's error, our words
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"memnet serve: error: port {port} on 127.0.0.1 is in use; choose another with --port"]


def test_serve_stops_cleanly_on_sigint(runs):
    port = browser.free_port()
    process = subprocess.Popen([sys.executable, "-m", "memnet.cli", "serve", runs["memn2n"], runs["seq2seq"], "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line, deadline = "", time.monotonic() + 90
        while "127.0.0.1" not in line:
            assert time.monotonic() < deadline and process.poll() is None, process.stderr.read() if process.poll() is not None else "slow start"
            if select.select([process.stdout], [], [], 1)[0]:
                line = process.stdout.readline()
        assert f"at http://127.0.0.1:{port}/" in line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
            assert page.status == 200
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and "memnet serve: stopped" in out
    assert "Traceback" not in err, err
    with socket.socket() as probe:  # the port is free again
        probe.bind(("127.0.0.1", port))


def test_serve_is_a_command_bound_to_this_machine_by_default(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    assert exit_.value.code == 0
    assert "RUN [RUN ...]" in capsys.readouterr().out
    import argparse

    from memnet.serve import add_serve_parser

    parser = argparse.ArgumentParser().add_subparsers()
    add_serve_parser(parser)
    args = parser.choices["serve"].parse_args(["runs/a"])
    assert (args.host, args.port) == ("127.0.0.1", 7860)
