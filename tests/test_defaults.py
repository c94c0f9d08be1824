"""Default presets: MemN2N trains the release's setting unless told otherwise, Gated MemN2N its chosen setting,
the paper's text is `--preset paper`; benchmark folders keep the meaning they were made with."""

import json
from pathlib import Path

import pytest

from memnet import bench
from memnet.cli import main
from memnet.presets import default_preset
from memnet.records import write_json
from memnet.run_record import runs_of
from memnet.spec import RunSpec, TrainSpec, resolve

RESULTS = Path(__file__).resolve().parents[1] / "results"
# Gated MemN2N's chosen setting as its tables ran it (README: `--preset release(-joint) -o gate_bias=1 --linear-start 40
# --dim 40`), and the benchmark folders that hold those runs' records
GATED_FLAGS = ({"gate_bias": 1, "dim": 40}, {"linear_start": 40})
GATED_RUNS = {False: "babi-1k-gmemn2n-release-read-gates-long-linear-start-d40",
              True: "babi-1k-gmemn2n-release-read-gates-long-linear-start-d40-joint"}


def trained(babi_dir, out, *flags, task="babi:1") -> dict:
    main(["train", "--task", task, "--data-dir", str(babi_dir), "--out", str(out), "--dim", "8", "--epochs", "1",
          "--linear-start", "0", "--quiet", *flags])
    return json.loads((out / "config.json").read_text())


@pytest.mark.parametrize("flags, task, preset", [
    ([], "babi:1", "release"),
    ([], "babi:1-2", "release-joint"),  # several tasks: joint training (task 2 is missing and skipped)
    (["--preset", "paper"], "babi:1", "paper"),
    (["--preset", "paper-joint"], "babi:1-2", "paper-joint"),
])
def test_train_without_a_preset_is_the_release_setting_and_paper_is_one_flag_away(babi_dir, tmp_path, capsys, flags, task, preset):
    config = trained(babi_dir, tmp_path / "run", *flags, task=task)
    expected = resolve("memn2n", preset, {"dim": 8}, {"epochs": 1, "linear_start": 0},
                       {"name": task, "data_dir": str(babi_dir), "variant": "en"})
    assert config["preset"] == preset and config["spec"] == expected.to_dict()


def test_the_release_and_paper_presets_differ_as_documented():
    task = {"name": "babi:1"}
    paper, release = resolve("memn2n", "paper", task_options=task), resolve("memn2n", "release", task_options=task)
    assert paper == resolve("memn2n", None, task_options=task) and paper.train == TrainSpec()  # the spec's defaults
    assert release.train.lr == 0.005 and release.train.random_noise and release.model.config.encoding == "position-release"
    joint = resolve("memn2n", "paper-joint", task_options={"name": "babi:all"})
    assert joint.model.config.dim == 50 and (joint.train.epochs, joint.train.lr_halve_every) == (60, 15)  # sec. 4.2
    assert not joint.train.linear_start and not joint.train.random_noise  # as the per-task text: PE alone


def test_models_without_a_default_preset_keep_the_specs_defaults():
    assert default_preset("lstm", joint=False) is None and default_preset("seq2seq", joint=True) is None
    assert (default_preset("memn2n", False), default_preset("memn2n", True)) == ("release", "release-joint")


@pytest.mark.parametrize("joint", [False, True])
def test_gmemn2n_default_is_its_chosen_setting_as_the_tables_ran_it(joint):
    preset = default_preset("gmemn2n", joint)
    assert preset == ("gmemn2n-joint" if joint else "gmemn2n")
    task = {"name": "babi:all" if joint else "babi:1"}
    spec = resolve("gmemn2n", preset, task_options=task)
    flags = resolve("gmemn2n", "release-joint" if joint else "release", *GATED_FLAGS, task_options=task)
    assert spec == flags
    assert (spec.model.config.gate_bias, spec.model.config.dim, spec.train.linear_start) == (1.0, 40, 40)
    assert spec.train.epochs == (60 if joint else 100)


@pytest.mark.parametrize("joint", [False, True])
def test_gmemn2n_default_resolves_to_a_committed_records_spec(joint):
    records = runs_of(RESULTS / GATED_RUNS[joint])  # the committed pack: a fresh clone has no run folders
    stored = next(iter(records.values())).config["spec"]
    record = RunSpec.from_dict(stored)
    spec = resolve("gmemn2n", default_preset("gmemn2n", joint), task_options=stored["task"]).with_seed(record.train.seed)
    assert spec == record  # read by today's spec: fields added since (train.loss) take their defaults


BARE = {"models": ["memn2n"], "tasks": "1", "variants": ["en"], "modes": ["per-task", "joint"], "repeats": 1}
OPTIONS = {"model": {"dim": 6}, "train": {"epochs": 1}, "task": {}}


def test_bench_gives_a_bare_model_its_default_preset_per_mode(babi_dir, tmp_path):
    root = tmp_path / "b"
    jobs, _ = bench.make_grid(root, BARE, OPTIONS, babi_dir, bench.bare_presets(root))
    assert [(job.preset, Path(job.run_dir).relative_to(root).parts[1:3]) for job in jobs] == [
        ("release", ("memn2n-release", "en-per-task")), ("release-joint", ("memn2n-release-joint", "en-joint"))]
    task = {"name": "babi:1", "data_dir": str(babi_dir), "variant": "en"}
    assert jobs[0].spec == resolve("memn2n", "release", {"dim": 6}, {"epochs": 1}, task)


def test_a_bench_folder_made_before_default_presets_still_means_the_specs_defaults(babi_dir, tmp_path):
    root = tmp_path / "b"
    write_json(root / "bench.json", {"name": "b", "grid": {**BARE, "modes": ["per-task"]}, "options": OPTIONS,
                                     "command_options": "--models memn2n --tasks 1 --dim 6 --epochs 1", "invocations": []})
    grid = bench.settle_identity(root, {**BARE, "modes": ["per-task"]}, OPTIONS, extend=False)
    (job,) = bench.make_grid(root, grid, OPTIONS, babi_dir, bench.bare_presets(root))[0]
    assert job.preset == "" and Path(job.run_dir).relative_to(root).parts[1] == "memn2n"
    assert job.spec == resolve("memn2n", None, {"dim": 6}, {"epochs": 1}, {"name": "babi:1", "data_dir": str(babi_dir)})


def test_a_bench_command_without_models_means_the_folders_models(tmp_path):
    root = tmp_path / "b"
    asked = {**BARE, "models": None, "modes": ["per-task"]}
    assert bench.settle_identity(root, asked, OPTIONS, extend=False)["models"] == ["memn2n"]  # a new folder
    write_json(root / "bench.json", {"grid": {**asked, "models": ["memn2n:pe-ls-rn"]}, "options": OPTIONS,
                                     "command_options": ""})  # made when --models defaulted to memn2n:pe-ls-rn
    assert bench.settle_identity(root, asked, OPTIONS, extend=False)["models"] == ["memn2n:pe-ls-rn"]


def test_a_new_bench_folder_records_the_defaults_it_was_made_with(babi_dir, tmp_path):
    main(["bench", "--name", "b", "--tasks", "1", "--data-dir", str(babi_dir), "--results", str(tmp_path), "--workers", "1",
          "--no-compile", "--epochs", "1", "--linear-start", "0", "--dim", "6", "--engine", "local"])
    record = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert record["grid"]["models"] == ["memn2n"] and record["default_presets"]["memn2n"] == ["release", "release-joint"]
    config = json.loads((tmp_path / "b" / "runs" / "memn2n-release" / "en-per-task" / "task-1" / "seed-0" / "config.json").read_text())
    assert config["preset"] == "release" and config["spec"]["train"]["clip_measure"] == "spectral"
