"""The run spec: checked before any work, one precedence rule, records you can trust, one writer per folder."""

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from memnet.cli import main
from memnet.locks import hold
from memnet.models import MODELS, READS
from memnet.spec import SpecError, TrainSpec, differences, resolve
from tests.conftest import write_task

TINY = ["--dim", "8", "--hops", "2", "--epochs", "2", "--quiet"]


def train(babi_dir, out, *flags, task="babi:1"):
    main(["train", "--task", task, "--data-dir", str(babi_dir), "--out", str(out), *TINY, *flags])


def refused(capsys, argv) -> str:
    """Run the CLI, expect exit code 2 and one line on stderr without a traceback; return that line."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def snapshot(folder: Path) -> dict[str, str]:
    """Every record file under `folder` and a hash of its bytes (lock files aside)."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file() and not path.name.startswith(".memnet.")}


# -- checked before any work ---------------------------------------------------------------------

@pytest.mark.parametrize("flags, field", [
    (["--epochs", "0"], "train.epochs"),
    (["--dim", "0"], "dim"),
    (["--clip-norm", "-1"], "train.clip_norm"),
    (["--lr-halve-every", "-1"], "train.lr_halve_every"),
    (["--lr", "0"], "train.lr"),
    (["--batch-size", "0"], "train.batch_size"),
    (["--linear-start", "-2"], "train.linear_start"),
    (["--seed", "-1"], "train.seed"),
    (["--epochs", "abc"], "train.epochs"),
    (["--optimizer", "adagrad"], "train.optimizer"),
    (["--precision", "float16"], "train.precision"),
    (["--weight-decay", "0.1"], "weight_decay"),  # SGD (the default) has no decoupled weight decay
    (["--memory-size", "0"], "task.memory_size"),
    (["-o", "hops=abc"], "hops"),
    (["-o", "hops=0"], "hops"),
    (["--encoding", "words"], "encoding"),
    (["-o", "memory_size=5"], "memory_size"),  # a size read from the data, not an option
    (["-o", "no_such_thing=1"], "no_such_thing"),
])
def test_a_bad_value_is_refused_naming_the_field(babi_dir, tmp_path, capsys, flags, field):
    out = tmp_path / "run"
    err = refused(capsys, ["train", "--task", "babi:1", "--data-dir", str(babi_dir), "--out", str(out), *flags])
    assert field in err
    assert not out.exists()  # refused before any work


def test_an_unknown_option_lists_the_valid_ones(babi_dir, tmp_path, capsys):
    err = refused(capsys, ["train", "--model", "gru", "--task", "babi:1", "--data-dir", str(babi_dir),
                           "--out", str(tmp_path / "r"), "-o", "cell=LSTM"])
    assert "cell" in err and "unknown option" in err and "hidden" in err  # gru's cell is its name, not an option


def test_options_that_do_not_fit_the_model_or_task_are_refused():
    with pytest.raises(SpecError, match="train.linear_start"):
        resolve("lstm", train_options={"linear_start": 5}, task_options={"name": "babi:1"})
    with pytest.raises(SpecError, match="train.random_noise"):
        resolve("lstm", train_options={"random_noise": True}, task_options={"name": "temporal:easy"})
    with pytest.raises(SpecError, match="task"):
        resolve("memn2n", task_options={"name": "babi:21"})
    with pytest.raises(SpecError, match="preset"):
        resolve("memn2n", "pe-ls-xx", task_options={"name": "babi:1"})


FAMILY_TASKS = {"stories": "babi:1", "sequences": "temporal:easy", "pairs": "reverse"}


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("kind, task", FAMILY_TASKS.items())
def test_a_model_reads_only_the_task_families_it_declares(model, kind, task):
    if kind in READS[model]:
        assert resolve(model, task_options={"name": task}).model.name == model
        return
    readers = [name for name in MODELS if kind in READS[name]]
    with pytest.raises(SpecError, match=rf"^{model} reads .*; task '{task}' gives .*: use --model ") as error:
        resolve(model, task_options={"name": task})
    assert all(name in str(error.value).split("use --model ")[1] for name in readers)


def test_a_model_asked_for_a_task_it_cannot_read_names_the_models_that_can(capsys, tmp_path):
    err = refused(capsys, ["train", "--model", "memn2n", "--task", "reverse", "--out", str(tmp_path / "run")])
    assert err == ("memnet train: error: memn2n reads stories (bAbI); task 'reverse' gives sequence-to-sequence pairs "
                   "(copy, reverse, sort): use --model seq2seq")
    err = refused(capsys, ["train", "--model", "seq2seq", "--task", "babi:1", "--out", str(tmp_path / "run")])
    assert err.endswith("use --model memn2n, gmemn2n, lstm, gru, rnn, attentive, storyformer or ut")
    assert not (tmp_path / "run").exists()


def test_bench_workers_must_be_positive(babi_dir, tmp_path, capsys):
    err = refused(capsys, ["bench", "--name", "b", "--tasks", "1", "--data-dir", str(babi_dir), "--results", str(tmp_path),
                           "--workers", "0"])
    assert "workers" in err
    assert not (tmp_path / "b").exists()


# -- one precedence rule ------------------------------------------------------------------------------

def test_defaults_then_preset_then_command_line():
    task = {"name": "babi:1"}
    assert resolve("memn2n", task_options=task).train == TrainSpec()
    preset = resolve("memn2n", "pe-ls-rn", task_options=task)
    assert preset.train.random_noise and preset.train.linear_start == 20 and preset.model.config.encoding == "position"
    given = resolve("memn2n", "pe-ls-rn", {"encoding": "bow"}, {"random_noise": False, "linear_start": 5}, task)
    assert not given.train.random_noise and given.train.linear_start == 5 and given.model.config.encoding == "bow"
    assert given.train.lr == TrainSpec().lr  # untouched fields keep the default


def test_every_boolean_has_an_off_form(babi_dir, tmp_path):
    train(babi_dir, tmp_path / "run", "--preset", "pe-ls-rn", "--no-random-noise", "--no-temporal")
    spec = json.loads((tmp_path / "run" / "config.json").read_text())["spec"]
    assert spec["train"]["random_noise"] is False and spec["train"]["linear_start"] == 20
    assert spec["model"]["options"]["temporal"] is False


# -- records -----------------------------------------------------------------------------------------

def test_the_record_is_the_resolved_spec_and_from_reproduces_it(babi_dir, tmp_path):
    train(babi_dir, tmp_path / "a", "--preset", "pe-ls-rn", "--seed", "3")
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["spec"]["train"]["seed"] == 3 and config["spec"]["model"]["name"] == "memn2n"
    assert config["sizes"]["vocab_size"] > 0 and config["preset"] == "pe-ls-rn"
    code = config["environment"]["code"]
    assert code["source_sha256"] and ("diff_file" in code) == code["dirty"]
    if code["dirty"]:
        diff = (tmp_path / "a" / code["diff_file"]).read_text()
        assert hashlib.sha256(diff.encode()).hexdigest() == code["diff_sha256"]

    main(["train", "--from", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b"), "--quiet"])
    metrics = lambda run: [{k: v for k, v in json.loads(line).items() if k != "seconds"}
                           for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
    assert metrics("a") == metrics("b")
    summary = lambda run: json.loads((tmp_path / run / "summary.json").read_text())
    assert summary("a")["test_error"] == summary("b")["test_error"]
    assert json.loads((tmp_path / "b" / "config.json").read_text())["spec"] == config["spec"]


def test_from_with_a_flag_changes_only_that_field(babi_dir, tmp_path):
    train(babi_dir, tmp_path / "a")
    main(["train", "--from", str(tmp_path / "a"), "--out", str(tmp_path / "b"), "--seed", "4", "--quiet"])
    a, b = (json.loads((tmp_path / run / "config.json").read_text())["spec"] for run in "ab")
    assert differences(a, b) == ["train.seed: 0 -> 4"]


# -- integrity -----------------------------------------------------------------------------------------

def test_resume_refuses_another_spec_and_names_the_fields(babi_dir, tmp_path, capsys):
    train(babi_dir, tmp_path / "run")
    before = snapshot(tmp_path / "run")
    err = refused(capsys, ["train", "--task", "babi:1", "--data-dir", str(babi_dir), "--out", str(tmp_path / "run"),
                           *TINY, "--optimizer", "adam", "--resume"])
    assert "train.optimizer: 'sgd' -> 'adam'" in err and "--from" in err
    assert snapshot(tmp_path / "run") == before


def test_an_out_holding_another_runs_spec_is_refused_untouched(babi_dir, tmp_path, capsys):
    write_task(babi_dir / "en", "qa2_two-supporting-facts_train.txt", 40, seed=6)
    write_task(babi_dir / "en", "qa2_two-supporting-facts_test.txt", 10, seed=7)
    train(babi_dir, tmp_path / "run")
    before = snapshot(tmp_path / "run")
    err = refused(capsys, ["train", "--task", "babi:2", "--data-dir", str(babi_dir), "--out", str(tmp_path / "run"), *TINY])
    assert "task.name: 'babi:1' -> 'babi:2'" in err
    assert snapshot(tmp_path / "run") == before


def test_a_repeats_folder_of_another_task_is_refused_untouched(babi_dir, tmp_path, capsys):
    write_task(babi_dir / "en", "qa2_two-supporting-facts_train.txt", 40, seed=6)
    write_task(babi_dir / "en", "qa2_two-supporting-facts_test.txt", 10, seed=7)
    train(babi_dir, tmp_path / "d", "--repeats", "2")
    before = snapshot(tmp_path / "d")
    err = refused(capsys, ["train", "--task", "babi:2", "--data-dir", str(babi_dir), "--out", str(tmp_path / "d"), *TINY,
                           "--repeats", "2"])
    assert "seed-0" in err and "task.name" in err
    assert snapshot(tmp_path / "d") == before


def test_a_finished_run_is_not_overwritten(babi_dir, tmp_path, capsys):
    train(babi_dir, tmp_path / "run")
    before = snapshot(tmp_path / "run")
    err = refused(capsys, ["train", "--task", "babi:1", "--data-dir", str(babi_dir), "--out", str(tmp_path / "run"), *TINY])
    assert "already holds this finished run" in err
    assert snapshot(tmp_path / "run") == before


BENCH = ["bench", "--name", "b", "--models", "memn2n:paper", "--tasks", "1", "--workers", "1", "--no-compile", "--epochs", "1", "--dim", "6"]


def test_a_benchmark_with_other_options_or_grid_is_refused_and_extend_adds(babi_dir, tmp_path, capsys):
    where = ["--data-dir", str(babi_dir), "--results", str(tmp_path)]
    main([*BENCH, *where])
    capsys.readouterr()
    before = snapshot(tmp_path / "b")
    err = refused(capsys, [*BENCH[:-4], "--epochs", "2", "--dim", "6", *where])
    assert "train.epochs" in err and "--name" in err
    err = refused(capsys, [*BENCH, "--repeats", "2", *where])
    assert "repeats: 1 -> 2" in err and "--extend" in err
    assert snapshot(tmp_path / "b") == before

    main([*BENCH, "--repeats", "2", "--extend", *where])
    runs = tmp_path / "b" / "runs" / "memn2n-paper" / "en-per-task" / "task-1"
    assert (runs / "seed-1" / "summary.json").exists()
    assert json.loads((tmp_path / "b" / "bench.json").read_text())["grid"]["repeats"] == 2
    spec = json.loads((runs / "seed-1" / "config.json").read_text())["spec"]
    assert spec["model"]["options"]["dim"] == 6 and spec["train"]["epochs"] == 1  # the flags reach every run


def test_bench_model_flags_must_fit_every_model_of_the_grid(babi_dir, tmp_path, capsys):
    err = refused(capsys, ["bench", "--name", "b", "--models", "memn2n,lstm", "--tasks", "1", "--data-dir", str(babi_dir),
                           "--results", str(tmp_path), "--hops", "2"])
    assert "model lstm.hops" in err and "unknown option" in err


# -- one writer per folder --------------------------------------------------------------------------------

HOLDER = "import sys, time; from memnet.locks import hold\nwith hold(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)"


def holder(folder: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_folder_in_use_is_refused_naming_its_holder(babi_dir, tmp_path, capsys):
    process = holder(tmp_path / "run")
    try:
        err = refused(capsys, ["train", "--task", "babi:1", "--data-dir", str(babi_dir), "--out", str(tmp_path / "run"), *TINY])
        assert f"process {process.pid}" in err and "in use" in err
        err = refused(capsys, [*BENCH[:2], "run", *BENCH[3:], "--data-dir", str(babi_dir), "--results", str(tmp_path)])
        assert "benchmark folder" in err and f"process {process.pid}" in err
    finally:
        process.kill()
        process.wait()


def test_a_killed_holder_leaves_no_lock_behind(babi_dir, tmp_path):
    process = holder(tmp_path / "run")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert (tmp_path / "run" / ".memnet.owner").exists()  # the stale owner note is still there ...
    train(babi_dir, tmp_path / "run")  # ... and does not block
    assert (tmp_path / "run" / "summary.json").exists()


def test_hold_refuses_a_second_holder_in_the_same_process(tmp_path):
    with hold(tmp_path / "f"):
        with pytest.raises(RuntimeError, match="in use"):
            with hold(tmp_path / "f"):
                pass
    with hold(tmp_path / "f"):  # released
        pass
