"""`memnet report`: one best-of rule, tables that say how they chose, and committed tables that match their records."""

import itertools
import json
import shutil
from pathlib import Path

import pytest

from memnet.cli import main
from memnet.records import write_json
from memnet.report import build_tables, kind_of, stale_tables
from memnet.run_record import pack
from memnet.selection import RULE, best_of
from memnet.tables.ablation import ABLATION_RECORD, ablation_tables
from memnet.tables.babi import babi_tables, published_column
from memnet.tables.leaderboard import END, START
from memnet.tables.speed import speed_tables

RESULTS = Path(__file__).resolve().parents[1] / "results"


def fake_run(root, spec, task, seed, valid, test):
    write_json(root / "runs" / spec / "en-per-task" / f"task-{task}" / f"seed-{seed}" / "summary.json",
               {"test_error": {"all": test}, "valid_error": {"all": valid}, "train_error": {"all": 0.0},
                "seed": seed, "device": "cpu: test", "seconds": 1.0})


def test_best_of_breaks_ties_by_seed_then_setting_whatever_the_order():
    runs = [{"valid": 1.0, "seed": 1, "setting": "b"}, {"valid": 1.0, "seed": 1, "setting": "a"},
            {"valid": 1.0, "seed": 0, "setting": "c"}, {"valid": 2.0, "seed": 0, "setting": "a"}]
    assert {id(best_of(order)) for order in itertools.permutations(runs)} == {id(runs[2])}  # lowest valid, then seed 0
    tied = runs[:2]  # same valid error and seed: the setting first in alphabetical order
    assert all(best_of(order)["setting"] == "a" for order in itertools.permutations(tied))
    assert best_of([{"valid": 0.5, "seed": 3}, {"valid": 0.5, "seed": 2}])["seed"] == 2  # "setting" is optional
    # the training code's summaries: other keys, read through the accessors
    summaries = [{"valid_error": {"all": 3.0}, "seed": 0}, {"valid_error": {"all": 1.0}, "seed": 1}]
    assert best_of(summaries, valid=lambda run: run["valid_error"]["all"])["seed"] == 1
    with pytest.raises(ValueError):
        best_of([])


def test_the_pooled_choice_does_not_depend_on_the_order_settings_came_in(tmp_path):
    settings = [("memn2n-pe-ls-rn", 3.0), ("memn2n-rpe-ls-rn", 7.0)]  # equal validation error and seed on task 1
    tables = []
    for name, order in [("a", settings), ("b", settings[::-1])]:
        root = tmp_path / name / "bench"
        for spec, test in order:
            fake_run(root, spec, 1, 0, 1.0, test)
        tables.append(babi_tables(root))
        rows = json.loads(tables[-1][root / "results.json"])["rows"]
        pooled = [row for row in rows if "+" in row["group"]]
        assert [(row["group"], row["best"], row["best_run"].split("/")[1]) for row in pooled] == [
            ("memn2n-pe-ls-rn+rpe-ls-rn en per-task", 3.0, "memn2n-pe-ls-rn")]  # the name first alphabetically
    assert [list(t.values()) for t in tables[:1]] == [list(t.values()) for t in tables[1:]]


def test_pooled_columns_are_labelled_and_stand_after_each_settings_own(tmp_path):
    root = tmp_path / "bench"
    for seed in range(2):
        fake_run(root, "memn2n-rpe-ls-rn", 1, seed, 1.0 + seed, 2.0)
        fake_run(root, "memn2n-pe-ls-rn", 1, seed, 3.0 + seed, 4.0)
    markdown = babi_tables(root)[root / "summary.md"]
    header = next(line for line in markdown.splitlines() if line.startswith("| task |"))
    titles = [title.strip() for title in header.strip("|").split("|")][1:]
    assert titles[:4] == ["ours: memn2n-pe-ls-rn en per-task, best of 2 (by valid)", "ours: memn2n-pe-ls-rn en per-task, mean ± std over 2",
                          "ours: memn2n-rpe-ls-rn en per-task, best of 2 (by valid)", "ours: memn2n-rpe-ls-rn en per-task, mean ± std over 2"]
    pooled = [title for title in titles if "+" in title]
    assert pooled and all("pooled" in title or title.endswith("setting chosen") for title in pooled)
    assert "pooled: per-task choice among settings by validation" in pooled[0]
    assert titles.index(pooled[0]) == 4 and titles[-1].startswith("published")
    assert f"Best run (memnet.selection): per task, the run with {RULE}." in markdown.splitlines()


def test_report_check_fails_on_an_edited_table_and_report_rebuilds_it(tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(RESULTS / "archive" / "babi-1k-memn2n-joint", results / "babi-1k-memn2n-joint")
    main(["report", str(results), "--check"])  # the committed table, untouched: exit 0
    assert "all 3 tables in 1 folder match" in capsys.readouterr().out
    summary = results / "babi-1k-memn2n-joint" / "summary.md"
    committed = summary.read_bytes()
    summary.write_text(summary.read_text().replace("| 1 |", "| 1 | 0.0 |", 1))
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(results), "--check"])
    assert exit_.value.code == 1 and f"differs from its records: {summary}" in capsys.readouterr().out
    assert summary.read_bytes() != committed  # --check writes nothing
    main(["report", str(results)])
    assert summary.read_bytes() == committed and not list(results.rglob("*.tmp"))


def test_every_folder_of_results_is_rebuilt_or_named_as_not(capsys):
    kinds = {folder.name: kind_of(folder) for folder in RESULTS.iterdir() if folder.is_dir()}
    assert kinds.pop("faithfulness") == "faithfulness" and kinds.pop("timing") == "timing"
    assert kinds.pop("sequences") == "sequences" and kinds.pop("speed") == "speed" and kinds.pop("speed-quick") == "speed"
    assert kinds.pop("babi-1k-release-ablation", "ablation") == "ablation"
    figures = [name for name in kinds if name == "attention" or name.startswith("attention-")]
    assert "attention" in figures and all(kinds.pop(name) is None for name in figures)  # made by their script
    assert kinds.pop("serve") is None  # a screenshot of memnet serve, made by scripts/serve_screenshot.py
    assert kinds.pop("archive") is None  # superseded benchmarks, each rebuilt in its own folder
    assert set(kinds.values()) == {"babi"}
    assert {kind_of(folder) for folder in (RESULTS / "archive").iterdir() if folder.is_dir()} == {"babi"}


def test_committed_tables_match_their_records():
    """`memnet report results --check`: every committed table is what its records give, byte for byte."""
    stale = stale_tables(build_tables(RESULTS))
    assert not stale, f"rebuild with `memnet report results`: {[str(path) for path in stale]}"


def test_the_ablation_table_reads_each_arm_against_the_baseline(tmp_path):
    for task in (1, 2):  # the baseline: task 1 solved, task 2 at 10%; two seeds each
        for seed in (0, 1):
            fake_run(tmp_path / "base", "memn2n-release", task, seed, valid=seed, test=[0.0, 10.0][task - 1] + seed)
            fake_run(tmp_path / "abl" / "slow-lr", "memn2n-release", task, seed, valid=seed, test=[20.0, 10.0][task - 1] + seed)
    write_json(tmp_path / "abl" / ABLATION_RECORD, {"baseline": "base", "arms": {"slow-lr": "--lr 0.01", "not-run": "--x"},
                                                    "invocations": []})
    assert kind_of(tmp_path / "abl") == "ablation"
    tables = ablation_tables(tmp_path / "abl")
    results = json.loads(tables[tmp_path / "abl" / "results.json"])
    base, arm = results["arms"]  # an arm with no runs yet is left out
    assert (base["best"], base["failed"], base["seed_mean"]) == (5.0, 1, 5.5)  # seed 0 is best by validation
    assert (arm["best"], arm["failed"], arm["seed_mean"]) == (15.0, 2, 15.5)
    assert arm["moved"] == ["1: 0.0 -> 20.0"]
    assert "| slow-lr | `--lr 0.01` | 2 | 15.0 | 2 | 15.5 ± 0.7 | +10.0 | +10.0 | 1: 0.0 -> 20.0 |" in tables[tmp_path / "abl" / "summary.md"]
    assert tmp_path / "abl" / "slow-lr" / "summary.md" in tables  # the arm's own per-task table
    assert "Not run yet: not-run (`--x`)" in tables[tmp_path / "abl" / "summary.md"]


def test_a_gpu_speed_record_shows_the_gpu_target_and_the_bfloat16_row(tmp_path):
    """bench_speed --device cuda --precision bfloat16: the table names the GPU's limits, compares bfloat16's error
    with float32's, and holds the 1k protocol to the GPU target (20 s), not the CPU's (4 min)."""
    record = json.loads((RESULTS / "speed" / "speed.json").read_text())
    record["machine"].update(gpu="NVIDIA H200", gpu_matmul_gflops=50000.0, gpu_matmul_gflops_bfloat16=700000.0,
                             gpu_copy_gbytes_per_s=4000.0)
    work = record["same_work"]
    work["device"] = "cuda"
    work["modes"]["compiled_population_bfloat16"] = {"seconds": 10.0, "mean_test_error": work["fast_mean_test_error"] + 0.25}
    for key in ("protocol_1k", "protocol_1k_warm"):  # both 1k protocols ran on the GPU
        record[key]["device"] = "cuda: NVIDIA H200"
    write_json(tmp_path / "speed.json", record)
    summary = next(iter(speed_tables(tmp_path).values()))
    assert "The GPU measures 50000.0 GFLOP/s" in summary and "one thread and the GPU" in summary
    assert "| compiled population bfloat16 | 10.0 |" in summary and "(+0.25)" in summary
    assert "one H100/H200: at most 20 s" in summary and "this CPU: at most 240 s" not in summary
    assert "this CPU: at most 600 s" in summary  # joint ran on the CPU: its CPU target


def test_a_speed_record_says_where_the_protocol_time_went(tmp_path):
    """Each population's seconds and its time a member-step; the workers' lower bound; what the target asks of a step."""
    record = json.loads((RESULTS / "speed" / "speed.json").read_text())
    record["protocol_1k"].update(seconds=400.0, workers=2, populations=[
        {"tasks": ["babi:2", "babi:3"], "members": 20, "story_slots": 50, "story_words": 6, "steps": 3000, "seconds": 300.0,
         "first_step_seconds": 40.0},
        {"tasks": ["babi:1"], "members": 10, "story_slots": 10, "story_words": 11, "steps": 3750, "seconds": 300.0}])
    write_json(tmp_path / "speed.json", record)
    summary = next(iter(speed_tables(tmp_path).values()))
    assert "| 2, 3 | 20 | 50 slots x 6 words | 3000 | 300.0 | 40.0 | 5.00 |" in summary
    assert "| 1 | 10 | 10 slots x 11 words | 3750 | 300.0 | - | 8.00 |" in summary
    assert "Together 600 s of training on 2 worker(s): at least 300 s of wall time" in summary
    assert "the other 100 s of the 400" in summary
    assert "The target of 240 s needs every step 1.25x faster" in summary  # 300 s at best against 4 min


def test_the_leaderboard_is_made_from_the_records_it_names(tmp_path):
    results = tmp_path / "results"
    # seeds 0 and 1 of one setting on tasks 1 and 2; seed 1 is the best by validation on task 1, seed 0 on task 2
    for task, seed, valid, test in [(1, 0, 5.0, 4.0), (1, 1, 1.0, 3.0), (2, 0, 2.0, 10.0), (2, 1, 4.0, 0.0)]:
        fake_run(results / "b1k", "memn2n-release", task, seed, valid, test)
    pack(results / "b1k", identities={f"runs/memn2n-release/en-per-task/task-{t}/seed-{s}": {
        "setting": "memn2n-release", "variant": "en", "mode": "per-task", "tasks": [t], "seed": s} for t in (1, 2) for s in (0, 1)})
    shutil.rmtree(results / "b1k" / "runs")
    entry = {"benchmark": "b1k", "group": "memn2n-release en per-task"}
    (results / "leaderboard.json").write_text(json.dumps({"models": [
        {"model": "MemN2N", "setting": "`--preset release`", "1k": entry, "settings": [{**entry, "options": "`--preset release`"}]}]}))
    (results / "README.md").write_text(f"# results\n\n{START}\nold\n{END}\n\nmore\n")
    (tmp_path / "README.md").write_text(f"# project\n{START}\n{END}\n")
    tables = build_tables(results)
    ours = next(line for line in tables[results / "README.md"].splitlines() if line.startswith("| **MemN2N** (ours)"))
    # best by validation: 3.0 on task 1, 10.0 on task 2 -> mean 6.5, one failed; seed means 7.0 and 1.5
    assert ours.split(" | ")[2:4] == ["6.5 / 1 (best of 2, 2 tasks)", "4.2 ± 3.9"]
    assert "mean valid 1.50, **chosen**" in tables[results / "README.md"] and "\nmore\n" in tables[results / "README.md"]
    assert "(published)" in tables[results / "README.md"]  # the papers' rows beside ours, labelled
    assert "[b1k](results/b1k/summary.md)" in tables[tmp_path / "README.md"]  # links that work from the project's README


def test_a_command_that_trained_nothing_does_not_relabel_the_runs(tmp_path):
    root = tmp_path / "bench"
    fake_run(root, "memn2n-release", 1, 0, 1.0, 2.0)
    call = {"command": "memnet bench --name bench", "libraries": {}, "python": "3"}
    write_json(root / "bench.json", {"grid": {"repeats": 1}, "invocations": [
        {**call, "code_version": "trained-it", "runs_trained": 1}, {**call, "code_version": "found-it-done", "runs_trained": 0}]})
    markdown = babi_tables(root)[root / "summary.md"]
    assert "- code version: `trained-it`" in markdown and "found-it-done" not in markdown


def test_a_group_stands_beside_the_published_column_of_its_model_data_and_mode():
    assert published_column("memn2n-pe-ls-rn en per-task") == "1k/pe-ls-rn"
    assert published_column("ut-ut en per-task") == "1k/ut" and published_column("ut-ut en-10k per-task") == "10k/ut"
    assert published_column("ut-ut en joint") == "1k/ut-joint"  # never the per-task column for a joint run
    assert published_column("qrn-qrn-adam en per-task") is None and published_column("storyformer-storyformer en joint") is None
