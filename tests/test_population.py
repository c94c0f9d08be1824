"""Population training: a member's records are those of the same spec trained alone, whoever shares its population."""

import json
import warnings
from pathlib import Path

import pytest
import torch

import memnet.population as population_module
from memnet import bench, units
from memnet.batches import StoryBatch
from memnet.population import Member, Population, population_key, train_population
from memnet.spec import resolve
from memnet.train import load_data, train_run

SMALL = {"dim": 8, "hops": 2}
OTHER_WORDS = ["bill", "fred", "julie"], ["cellar", "attic", "porch", "yard", "shed"]
STATEMENTS = 18  # per story of the other task: more than 16 memory slots, another population bucket


def write_other_task(folder: Path, number: int, stories: int, seed: int) -> None:
    """A where-is task in other words (its own, larger vocabulary) and longer stories: a member with other sizes."""
    import random

    rng, lines = random.Random(seed), []
    actors, places = OTHER_WORDS
    for _ in range(stories):
        where, line_id = {}, 0
        for _ in range(STATEMENTS):
            actor, place = rng.choice(actors), rng.choice(places)
            line_id += 1
            where[actor] = (place, line_id)
            lines.append(f"{line_id} {actor.capitalize()} walked quietly to the {place}.")
        actor = rng.choice(sorted(where))
        lines.append(f"{line_id + 1} Where is {actor.capitalize()}? \t{where[actor][0]}\t{where[actor][1]}")
    for split, count in [("train", stories), ("test", stories // 4)]:
        folder.mkdir(parents=True, exist_ok=True)
        rows = lines if split == "train" else lines[: count * (STATEMENTS + 1)]
        (folder / f"qa{number}_other_{split}.txt").write_text("\n".join(rows) + "\n")


def spec(babi_dir, task=1, seed=0, **train):
    options = {"epochs": 2, "linear_start": 1, "random_noise": True, "seed": seed, **train}
    return resolve("memn2n", None, SMALL, options, {"name": f"babi:{task}", "data_dir": str(babi_dir)})


def metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def assert_same_run(alone: Path, member: Path) -> None:
    for a, b in zip(metrics(alone), metrics(member), strict=True):
        for key in ("train_loss", "valid_loss"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (key, a, b)
        for key in ("epoch", "phase", "lr", "train_error", "valid_error"):
            assert a[key] == b[key], (key, a, b)
    summary = lambda folder: json.loads((folder / "summary.json").read_text())
    for key in ("test_error", "valid_error", "train_error", "epochs", "linear_start_epochs", "seed", "measured_epoch",
                "stopped_early"):
        assert summary(alone).get(key) == summary(member).get(key), key


def assert_members_are_alone_runs(specs, tmp_path: Path, device: str = "cpu", compile: bool = False) -> None:
    """Train `specs` as one population (tmp_path/member-K) and each alone (tmp_path/alone-K): the same records."""
    members = [Member(s, tmp_path / f"member-{k}", load_data(s.task)) for k, s in enumerate(specs)]
    train_population(members, device=device, compile=compile, progress=False)
    for k, s in enumerate(specs):
        train_run(s, tmp_path / f"alone-{k}", progress=False, device=device)
        assert_same_run(tmp_path / f"alone-{k}", tmp_path / f"member-{k}")


@pytest.fixture
def mixed(babi_dir):
    """Task 1 (the fixture's) and task 2 (other words, longer stories): two vocabularies, two memory sizes."""
    write_other_task(babi_dir / "en", 2, 30, seed=9)
    return babi_dir


def test_a_member_is_the_run_it_would_be_alone(mixed, tmp_path):
    specs = [spec(mixed, 1, 0), spec(mixed, 2, 0), spec(mixed, 1, 1, lr=0.02, clip_norm=5.0)]
    assert len({population_key(s) for s in specs}) == 1  # tasks, seeds and numbers differ; they share one
    assert load_data(specs[1].task).sizes.vocab_size != load_data(specs[0].task).sizes.vocab_size
    assert_members_are_alone_runs(specs, tmp_path)
    config = json.loads((tmp_path / "member-1" / "config.json").read_text())
    assert config["spec"] == specs[1].to_dict() and config["engine"]["members"] == 3
    recorded = json.loads((tmp_path / "member-1" / "summary.json").read_text())["population"]  # what a benchmark's time was
    assert recorded["members"] == 3 and recorded["first_step_seconds"] >= 0  # an eager first step of a tiny model can round to 0.00
    assert "population" not in json.loads((tmp_path / "alone-1" / "summary.json").read_text())


def test_members_match_alone_runs_where_each_step_reads_a_table_of_its_own_batch(mixed, tmp_path, monkeypatch):
    monkeypatch.setattr(StoryBatch, "read_by", lambda batch, rows: batch.without_table())  # as joint training's 3,039 sentences > 1,600 slots
    specs = [spec(mixed, 1, 0), spec(mixed, 2, 0)]
    members = [Member(s, tmp_path / "probe", load_data(s.task)) for s in specs]
    population = Population(members, torch.device("cpu"), compile=False)
    assert population.splits["train"].sentences.shape[1] == 0
    ids, rows = population.step_tables(torch.zeros(2, 32, dtype=torch.long))  # 32 copies of each member's first question
    assert rows.shape[:2] == (2, population_module.TABLE_ROUNDING) and ids.shape == (2, 32, population.splits["train"].story.shape[2])
    assert_members_are_alone_runs(specs, tmp_path)  # alone, each batch reads a table of its own sentences too


def test_members_match_alone_runs_where_a_step_table_would_not_pay_and_the_population_reads_slots(mixed, tmp_path, monkeypatch):
    monkeypatch.setattr(StoryBatch, "read_by", lambda batch, rows: batch.without_table())
    monkeypatch.setattr(population_module, "TABLE_ROUNDING", 10_000)  # more rows than a batch has slots
    specs = [spec(mixed, 1, 0), spec(mixed, 2, 0)]
    members = [Member(s, tmp_path / "probe", load_data(s.task)) for s in specs]
    population = Population(members, torch.device("cpu"), compile=False)
    assert population.step_tables(torch.zeros(2, 32, dtype=torch.long)) is None and population.whole_tables is None
    assert_members_are_alone_runs(specs, tmp_path)


def test_adam_members_match_alone_runs(babi_dir, tmp_path):
    specs = [spec(babi_dir, 1, seed, optimizer="adam", lr=0.003, epochs=3, linear_start=0) for seed in (0, 1)]
    assert_members_are_alone_runs(specs, tmp_path)


@pytest.mark.parametrize("optimizer", ["adamw", "adam"])  # decoupled weight decay, and Adam's L2
def test_adam_members_with_weight_decay_match_alone_runs(babi_dir, tmp_path, optimizer):
    specs = [spec(babi_dir, 1, seed, optimizer=optimizer, weight_decay=0.5, lr=0.003, epochs=3, linear_start=0)
             for seed in (0, 1)]
    assert_members_are_alone_runs(specs, tmp_path)


def test_a_diverging_member_leaves_the_others_untouched(babi_dir, tmp_path):
    specs = [spec(babi_dir, 1, 0), spec(babi_dir, 1, 1, lr=1e30, clip_norm=0.0, linear_start=0)]
    members = [Member(s, tmp_path / f"member-{k}", load_data(s.task)) for k, s in enumerate(specs)]
    summaries = train_population(members, device="cpu", compile=False, progress=False)
    assert "loss became" in summaries[1]["diverged"] and not (tmp_path / "member-1" / "summary.json").exists()
    train_run(specs[0], tmp_path / "alone", progress=False, device="cpu")
    assert_same_run(tmp_path / "alone", tmp_path / "member-0")


def interrupt_population(specs, tmp_path: Path, monkeypatch, stop_at_call: int) -> None:
    """Train `specs` as one population in tmp_path/cut-K, interrupted (KeyboardInterrupt) at the `stop_at_call`-th
    end of a member's epoch, with every finished epoch checkpointed."""
    real, calls = population_module.finish_epoch, {"n": 0}

    def stop(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == stop_at_call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(population_module, "finish_epoch", stop)
    cut = [Member(s, tmp_path / f"cut-{k}", load_data(s.task)) for k, s in enumerate(specs)]
    with pytest.raises(KeyboardInterrupt):
        train_population(cut, device="cpu", compile=False, progress=False, checkpoint_seconds=0)
    monkeypatch.setattr(population_module, "finish_epoch", real)


def resume_together_and_alone(specs, tmp_path: Path) -> None:
    """Member 0 of an interrupted population (tmp_path/cut-K) resumes in a population, member 1 alone; both must end
    as the uninterrupted population (tmp_path/whole-K)."""
    train_population([Member(specs[0], tmp_path / "cut-0", load_data(specs[0].task))], device="cpu", compile=False, progress=False)
    train_run(specs[1], tmp_path / "cut-1", resume=True, progress=False, device="cpu")
    for k in (0, 1):
        assert_same_run(tmp_path / f"whole-{k}", tmp_path / f"cut-{k}")


def test_an_interrupted_population_resumes_to_the_same_records_alone_or_together(babi_dir, tmp_path, monkeypatch):
    specs = [spec(babi_dir, 1, seed, epochs=3) for seed in (0, 1)]
    whole = [Member(s, tmp_path / f"whole-{k}", load_data(s.task)) for k, s in enumerate(specs)]
    train_population(whole, device="cpu", compile=False, progress=False)
    interrupt_population(specs, tmp_path, monkeypatch, stop_at_call=5)  # the first member's third epoch
    assert torch.load(tmp_path / "cut-0" / "checkpoint.pt", weights_only=True)["state"]["epoch"] == 2
    resume_together_and_alone(specs, tmp_path)


def test_without_a_compiler_the_step_runs_eagerly_with_one_warning(babi_dir, tmp_path, monkeypatch):
    def broken_compile(fn, **kwargs):
        def fail(*args):
            raise RuntimeError("no C compiler found")
        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    s = spec(babi_dir, 1, 0, epochs=1, linear_start=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_population([Member(s, tmp_path / "member", load_data(s.task))], device="cpu", compile=True, progress=False)
    messages = [str(w.message) for w in caught if "torch.compile is unavailable" in str(w.message)]
    assert len(messages) == 2 and "no C compiler found" in messages[0]  # the step and the evaluation, once each
    train_run(s, tmp_path / "alone", progress=False, device="cpu")
    assert_same_run(tmp_path / "alone", tmp_path / "member")


def test_the_compiled_step_gives_the_eager_records(babi_dir, tmp_path):
    s = resolve("memn2n", None, {"dim": 4, "hops": 1}, {"epochs": 1, "random_noise": True},
                {"name": "babi:1", "data_dir": str(babi_dir)})
    train_population([Member(s, tmp_path / "compiled", load_data(s.task))], device="cpu", compile=True, progress=False)
    train_run(s, tmp_path / "alone", progress=False, device="cpu")
    assert_same_run(tmp_path / "alone", tmp_path / "compiled")


def test_the_bench_groups_populations_and_keeps_the_other_models_alone(mixed, tmp_path):
    grid = {"models": ["memn2n:paper", "lstm:baseline"], "tasks": "1-2", "variants": ["en"], "modes": ["per-task"], "repeats": 2}
    jobs, _ = bench.make_grid(tmp_path / "b", grid, {"model": {}, "train": {"epochs": 1}, "task": {}}, mixed)
    grouped = units.units_of(jobs, "population")
    sizes = sorted(len(unit) for unit in grouped)
    assert sizes == [1, 1, 1, 1, 2, 2]  # memn2n: task 1's and task 2's seeds (two memory buckets); lstm: each alone
    assert all(len(unit) == 1 for unit in units.units_of(jobs, "local"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_population_on_the_gpu_is_the_run_alone_on_the_gpu(mixed, tmp_path):
    specs = [spec(mixed, 1, 0), spec(mixed, 2, 1)]
    assert_members_are_alone_runs(specs, tmp_path, device="cuda", compile=True)


def release_spec(babi_dir, task=1, seed=0, model="memn2n", **train):
    """The release preset, shortened: linear start, then lr halved at every 2nd main epoch."""
    options = {"epochs": 3, "linear_start": 1, "lr_halve_every": 2, "seed": seed, **train}
    return resolve(model, "release", SMALL, options, {"name": f"babi:{task}", "data_dir": str(babi_dir)})


def test_members_with_time_words_but_vocabulary_answers_match_alone_runs(mixed, tmp_path):
    """Logits wider than the classes (the time words' columns of W = C^K, masked): the release ablation's
    answers=vocabulary arm, which once failed to build its population."""
    specs = [resolve("memn2n", "release", {**SMALL, "answers": "vocabulary"}, {"epochs": 2, "linear_start": 1, "seed": seed},
                     {"name": f"babi:{task}", "data_dir": str(mixed)}) for task, seed in [(1, 0), (2, 1)]]
    assert_members_are_alone_runs(specs, tmp_path)


def test_release_members_match_alone_runs(mixed, tmp_path):
    """Every release switch in a population: time words after each member's own vocabulary, time tables
    of each member's memory size, the release's noise, batches with replacement, spectral clipping."""
    specs = [release_spec(mixed, 1, 0), release_spec(mixed, 2, 0), release_spec(mixed, 1, 1, clip_norm=0.5)]
    assert len({population_key(s) for s in specs}) == 1
    assert population_key(specs[0]) != population_key(spec(mixed, 1, 0))  # another clipping norm and noise rule
    assert_members_are_alone_runs(specs, tmp_path)
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "member-0" / "metrics.jsonl").read_text().splitlines()]
    assert lrs == [0.005, 0.005, 0.0025, 0.0025]  # linear start, then halved at main epoch 2 (mod(ep, 2) == 0)


@pytest.mark.parametrize("preset", [None, "release"])
def test_gated_members_match_alone_runs(mixed, tmp_path, preset):
    specs = [spec(mixed, 1, 0), spec(mixed, 2, 1, clip_norm=5.0)] if preset is None else [release_spec(mixed, 1, 0), release_spec(mixed, 2, 1)]
    specs = [resolve("gmemn2n", None, {**s.model.options(), "gate_tying": "hop"}, s.to_dict()["train"], s.to_dict()["task"])
             for s in specs]
    assert_members_are_alone_runs(specs, tmp_path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_release_and_gated_populations_on_the_gpu_are_the_runs_alone_on_the_gpu(mixed, tmp_path):
    specs = [release_spec(mixed, 1, 0), release_spec(mixed, 2, 1, model="gmemn2n")]
    for k, s in enumerate(specs):
        train_population([Member(s, tmp_path / f"member-{k}", load_data(s.task))], device="cuda", compile=True, progress=False)
        train_run(s, tmp_path / f"alone-{k}", progress=False, device="cuda")
        assert_same_run(tmp_path / f"alone-{k}", tmp_path / f"member-{k}")


def test_a_member_stopped_before_its_summary_is_summarised_without_training(babi_dir, tmp_path):
    s = spec(babi_dir, 1, 0, epochs=1, linear_start=0)
    member = lambda: Member(s, tmp_path / "run", load_data(s.task))
    train_population([member()], device="cpu", compile=False, progress=False)
    summary = (tmp_path / "run" / "summary.json").read_text()
    (tmp_path / "run" / "summary.json").unlink()  # as if stopped after the last checkpoint
    train_population([member()], device="cpu", compile=False, progress=False)
    assert len(metrics(tmp_path / "run")) == 1 and (tmp_path / "run" / "summary.json").read_text() == summary


def test_with_several_workers_the_bench_cuts_populations_where_that_ends_sooner(mixed, tmp_path, monkeypatch):
    jobs = []
    for task, repeats in [(1, 1), (2, 6)]:  # one small population, one large
        grid = {"models": ["memn2n:paper"], "tasks": str(task), "variants": ["en"], "modes": ["per-task"], "repeats": repeats}
        jobs += bench.make_grid(tmp_path / "b", grid, {"model": {}, "train": {"epochs": 1}, "task": {}}, mixed)[0]
    monkeypatch.setattr(units, "worth_compiling", lambda unit: True)  # as if large enough to compile
    whole = units.units_of(jobs, "population", workers=1)
    assert units.units_of(jobs, "population", workers=2) == whole  # tiny runs: another compile costs more than it saves
    monkeypatch.setattr(units, "COMPILE_WORK", 0.0)
    parts = units.units_of(jobs, "population", workers=2)
    assert len(parts) > len(whole) and units.makespan(parts, 2) < units.makespan(whole, 2)
    assert sorted(job.run_dir for unit in parts for job in unit) == sorted(job.run_dir for job in jobs)  # each run once
    assert [units.work(unit) for unit in parts] == sorted((units.work(unit) for unit in parts), reverse=True)
    for unit in parts:  # a part never mixes what cannot share a population
        assert len({(population_key(job.spec), units.memory_bucket(units.shape_of(job)[0])) for job in unit}) == 1


def test_a_process_compiles_the_graphs_of_more_populations_than_dynamos_default_limit():
    from torch._dynamo.utils import counters

    def step(x):  # one function's code shared by every population, as make_step's is
        return x * 2 + 1

    before = counters["stats"]["unique_graphs"]
    for size in range(1, 11):  # a worker training ten units, each of its own shapes
        population_module.compiled(step, enabled=True)(torch.ones(size))
    assert counters["stats"]["unique_graphs"] - before == 10  # none left to run eagerly past the 8th


def test_the_bench_weighs_a_storyformer_step_by_its_sentences_reading_each_other(mixed, tmp_path):
    """MemN2N's step work grows with the story's slots, the storyformer's faster (every sentence reads every
    other), so that the bench cuts its long-story populations across workers by what they really cost."""
    assert units.step_work("memn2n", 40, 6) == 2 * units.step_work("memn2n", 20, 6)
    assert units.step_work("storyformer", 40, 6) > 2.5 * units.step_work("storyformer", 20, 6)
    grid = {"models": ["storyformer:storyformer"], "tasks": "2", "variants": ["en"], "modes": ["per-task"], "repeats": 2}
    jobs, _ = bench.make_grid(tmp_path / "b", grid, {"model": {}, "train": {"epochs": 3}, "task": {}}, mixed)
    slots, words = units.shape_of(jobs[0])
    questions = len(units.cached_data(jobs[0].spec.task).splits["train"])
    assert units.work(jobs) == 2 * questions * 3 * units.step_work("storyformer", slots, words)


def test_the_bench_bar_moves_by_each_runs_share_of_the_work(mixed, tmp_path):
    """Task 2's stories are longer than task 1's: its run moves the bar further, and the runs are counted beside it."""
    grid = {"models": ["memn2n:paper"], "tasks": "1-2", "variants": ["en"], "modes": ["per-task"], "repeats": 1}
    jobs, _ = bench.make_grid(tmp_path / "b", grid, {"model": {}, "train": {"epochs": 1}, "task": {}}, mixed)
    short, long = sorted(jobs, key=lambda job: units.work([job]))
    assert units.work([short]) < units.work([long])
    bar = bench.Progress("b", jobs, jobs)
    bar.finished([short])
    fraction = bar.bar.n / bar.bar.total
    assert fraction == pytest.approx(units.work([short]) / (units.work([short]) + units.work([long]))) and fraction < 0.5
    assert "1/2 runs" in bar.bar.postfix
    bar.finished([long])
    assert bar.bar.n == pytest.approx(bar.bar.total) and "2/2 runs" in bar.bar.postfix
    bar.close()


def test_a_unit_too_small_to_repay_its_compile_trains_eagerly(mixed, tmp_path, monkeypatch):
    grid = {"models": ["memn2n:paper"], "tasks": "1-2", "variants": ["en"], "modes": ["per-task"], "repeats": 2}
    jobs, _ = bench.make_grid(tmp_path / "b", grid, {"model": {}, "train": {"epochs": 1}, "task": {}}, mixed)
    grouped = units.units_of(jobs, "population")
    assert not any(map(units.worth_compiling, grouped))  # seconds of work against a minute of compiling
    monkeypatch.setattr(units, "COMPILE_WORK", min(map(units.work, grouped)))  # a compile as cheap as the smallest unit's work
    assert all(map(units.worth_compiling, grouped))
    monkeypatch.undo()
    asked = []
    real = bench.run_unit
    monkeypatch.setattr(bench, "run_unit", lambda unit, **kw: asked.append(kw["compile"]) or real(unit, **kw))
    bench.run_bench("b", grid, {"model": {}, "train": {"epochs": 1}, "task": {}}, data_dir=mixed, results=tmp_path, workers=1)
    assert asked == [False, False]  # memnet bench compiles by default, but not these
