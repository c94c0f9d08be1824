"""The official release's switches (preset `release`), each against a hand computation or a
transcription of what the release's MATLAB code does (MemN2N-babi-matlab in facebook/MemNN)."""

import collections
import math
import random

import numpy as np
import pytest
import torch

from memnet import loop
from memnet.batches import StoryBatch, release_noisy_time
from memnet.loop import clip_each, epoch_order, gradient_norms
from memnet.models.memn2n import MemN2N, MemN2NConfig
from memnet.spec import TrainSpec, differences, resolve
from memnet.train import load_data, train_run
from tests.conftest import tiny_babi_batch, tiny_sizes

RELEASE_MODEL = {"encoding": "position-release", "time_words": True, "time_scale": True, "time_rows": "memory-slots",
                 "answers": "table", "recent_only": True}


def stories(length: int, rows: int) -> StoryBatch:
    """`rows` copies of one story of `length` sentences, with time as the loader writes it."""
    mask = torch.ones(rows, length, dtype=torch.bool)
    zeros = torch.zeros(rows, dtype=torch.long)
    time = (length - 1 - torch.arange(length)).expand(rows, length)
    return StoryBatch(story=mask[..., None].long(), query=torch.ones(rows, 1, dtype=torch.long), memory_mask=mask,
                      time=time, supporting=zeros[:, None] - 1, target=zeros, task=zeros)


# ---- random noise -------------------------------------------------------------------------------

def test_the_release_noise_rule_has_the_hand_computed_distribution():
    """n = 3 sentences: k ~ U{0, 1} blanks (ceil(0.3) = 1). k = 0: times 3, 2, 1 (oldest first);
    k = 1: the first 3 values of a permutation of 1..4, sorted descending, i.e. each 3-subset of
    {1, 2, 3, 4} with probability 1/4. Minus 1 for our recency from 0."""
    rows = 40_000
    noisy = stories(3, rows).with_time_noise(torch.Generator().manual_seed(0), 3, "release").time
    seen = collections.Counter(map(tuple, noisy.tolist()))
    expected = {(2, 1, 0): 1 / 2 + 1 / 8, (3, 1, 0): 1 / 8, (3, 2, 0): 1 / 8, (3, 2, 1): 1 / 8}
    assert set(seen) == set(expected)
    for times, probability in expected.items():
        assert seen[times] / rows == pytest.approx(probability, abs=0.01)


def release_reference(n: int, rng: random.Random) -> tuple[int, ...]:
    """train.m's rule, transcribed: nblank = randi([0, ceil(n * 0.1)]); rt = randperm(n + nblank);
    times = sort(rt(1:n), 'descend') (before the clamp to sz), as recency from 0."""
    blanks = rng.randint(0, math.ceil(n * 0.1))
    permutation = rng.sample(range(1, n + blanks + 1), n + blanks)
    return tuple(t - 1 for t in sorted(permutation[:n], reverse=True))


def test_the_release_noise_rule_matches_a_transcription_of_the_release_on_longer_stories():
    n, rows = 14, 40_000  # up to 2 blanks
    ours = stories(n, rows).with_time_noise(torch.Generator().manual_seed(1), 20, "release").time.tolist()
    rng = random.Random(1)
    theirs = [release_reference(n, rng) for _ in range(rows)]
    for statistic in (lambda times: times[0], lambda times: times[-1], lambda times: sum(times)):
        a, b = collections.Counter(map(statistic, ours)), collections.Counter(map(statistic, theirs))
        for value in set(a) | set(b):
            assert a[value] / rows == pytest.approx(b[value] / rows, abs=0.015), value
    assert all(list(times) == sorted(times, reverse=True) and len(set(times)) == n for times in ours)


def test_the_release_noise_draws_the_same_however_the_batch_is_padded():
    batch = tiny_babi_batch([[2, 4], [6, 0]])
    trimmed = batch.select(torch.tensor([0, 1]))  # 3 slots instead of 4
    a = batch.with_time_noise(torch.Generator().manual_seed(5), 4, "release").time
    b = trimmed.with_time_noise(torch.Generator().manual_seed(5), 4, "release").time
    assert torch.equal(a[:, :3], b)
    times = release_noisy_time(batch.time, batch.memory_mask, torch.zeros(2), torch.rand(2, 5))
    assert torch.equal(times, batch.time)  # no blanks: the release's times n..1 are ours


# ---- the learning rate, batches and clipping ----------------------------------------------------

def release_rates(linear: int, epochs: int, every: int) -> list[float]:
    """train_linear_start.m then train.m: 0.005 for `linear` epochs (decay step linear + 1: never
    halved), then from 0.005 again, halved at the start of epoch ep when mod(ep, every) == 0."""
    rates = [0.005] * linear
    rate = 0.005
    for ep in range(1, epochs + 1):
        if ep % every == 0:
            rate *= 0.5
        rates.append(rate)
    return rates


@pytest.mark.parametrize("linear, epochs, every", [(20, 100, 25), (30, 60, 15)])
def test_the_learning_rate_is_the_releases(linear, epochs, every):
    config = TrainSpec(lr=0.005, linear_start=linear, epochs=epochs, lr_halve_every=every, lr_halve_at_multiples=True)
    ours = [loop.learning_rate(config, epoch, None if epoch < linear else linear) for epoch in range(linear + epochs)]
    assert ours == release_rates(linear, epochs, every)
    assert ours[linear + every - 2] == 0.005 and ours[linear + every - 1] == 0.0025  # the first halving after every - 1 epochs


def test_batches_are_drawn_with_replacement_floor_n_over_b_an_epoch():
    config = TrainSpec(batch_size=32, batch_sampling="replacement")
    order = epoch_order(900, config, torch.Generator().manual_seed(0))
    assert len(order) == 28 * 32 and order.min() >= 0 and order.max() < 900
    assert len(order.unique()) < len(order)  # with replacement
    assert len(epoch_order(20, config, torch.Generator())) == 32  # a split smaller than a batch: one batch
    assert sorted(epoch_order(50, TrainSpec(), torch.Generator()).tolist()) == list(range(50))


def orthogonal(size: int, seed: int) -> np.ndarray:
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(size, size)))[0]


def test_spectral_clipping_bounds_the_largest_singular_value_of_each_matrix():
    """MATLAB's norm() of a matrix is its largest singular value (Weight.m clips on it at 40)."""
    singular = np.array([80.0, 30.0, 10.0, 1.0])
    gradient = orthogonal(6, 0)[:, :4] @ np.diag(singular) @ orthogonal(4, 1).T  # (6, 4), norm 80, Frobenius ~86
    small = orthogonal(6, 2)[:, :4] @ np.diag([39.0, 20.0, 5.0, 1.0]) @ orthogonal(4, 3).T  # norm 39: untouched
    model = torch.nn.ModuleDict({"big": torch.nn.Embedding(6, 4), "small": torch.nn.Embedding(6, 4)})
    model["big"].weight.grad = torch.tensor(gradient, dtype=torch.float32)
    model["small"].weight.grad = torch.tensor(small, dtype=torch.float32)
    clip_each(model, 40.0, "spectral")
    np.testing.assert_allclose(model["big"].weight.grad.numpy(), gradient * 40 / 80, rtol=1e-5)
    np.testing.assert_allclose(model["small"].weight.grad.numpy(), small, rtol=1e-6)
    assert np.linalg.norm(model["big"].weight.grad.numpy(), 2) == pytest.approx(40, rel=1e-5)
    stacked = torch.tensor(np.stack([gradient, small]), dtype=torch.float32)  # a population's members
    np.testing.assert_allclose(gradient_norms(stacked, "spectral").numpy(), [80, 39], rtol=1e-5)
    np.testing.assert_allclose(gradient_norms(stacked, "frobenius").numpy(),
                               [np.linalg.norm(gradient), np.linalg.norm(small)], rtol=1e-5)
    assert gradient_norms(torch.tensor([[3.0, 4.0]]), "spectral").tolist() == [5.0]  # a vector: its length


def test_the_largest_eigenvalue_by_repeated_squaring_is_the_eigensolvers_to_its_bound():
    """train.largest_eigenvalue against LAPACK, in float64 so that only the method's error shows: never low,
    high by at most s^(2^-17); a zero matrix gives 0, and a repeated or lone top eigenvalue is found too."""
    rng = np.random.default_rng(0)
    flat = rng.normal(size=(5, 30, 20)) * np.array([1e-3, 1.0, 7.0, 40.0, 1e3])[:, None, None]  # scales a step may see
    grams = [flat.transpose(0, 2, 1) @ flat]
    q = orthogonal(20, 4)
    grams.append(np.stack([q @ np.diag(values) @ q.T for values in  # a top eigenvalue twice; one of rank 1; zero
                           (np.r_[9.0, 9.0, np.linspace(5, 0, 18)], np.r_[4.0, np.zeros(19)], np.zeros(20))]))
    for gram in grams:
        found = loop.largest_eigenvalue(torch.tensor(gram)).numpy()
        exact = np.linalg.eigvalsh(gram)[:, -1].clip(min=0)
        assert np.all(found >= exact * (1 - 1e-12)) and np.all(found <= exact * 20 ** (2.0**-17) + 1e-300)
    assert loop.largest_eigenvalue(torch.zeros(1, 3, 3)).tolist() == [0.0]  # float32 too: no NaN from 0 / 0


# ---- the model: time words, answers, the cut ------------------------------------------------------

def test_time_words_are_rows_of_the_tables_scaled_by_position_weight_column_J():
    """One hop by hand: key m_i = sum_j l_kj A[x_ij] + l_kJ A[V + t_i], J = sizes.sentence_size, the
    time table sz = memory_slots rows with recency clamped; logits over every row of W = C^T, nil at 0."""
    torch.manual_seed(0)
    V, d, J, slots = 8, 5, 4, 2
    sizes = tiny_sizes(V, memory_slots=slots, sentence_size=J)
    model = MemN2N(MemN2NConfig(hops=1, dim=d, **{**RELEASE_MODEL, "recent_only": False}), sizes)
    assert model.words[0].weight.shape == (V + slots, d) and len(model.times) == 0
    batch = tiny_babi_batch([[2, 4], [6, 0]])  # stories of 3 and 2 sentences: recency 2 reads time row 1 (clamped)
    A, C = model.words[0].weight.detach().numpy(), model.words[1].weight.detach().numpy()
    k = np.arange(1, d + 1)

    def l(j):  # the release's position weight of place j (build_model.m), over k
        return 1 + 4 * (k - (d + 1) / 2) * (j - (J + 1) / 2) / (d * J)

    out = model(batch)
    for i in range(2):
        u = sum(l(j + 1) * A[word] for j, word in enumerate(batch.query[i].tolist()) if word)
        keys, values = [], []
        for slot, sentence in enumerate(batch.story[i].tolist()):
            if batch.memory_mask[i, slot]:
                time_word = V + min(batch.time[i, slot].item(), slots - 1)
                keys.append(sum(l(j + 1) * A[w] for j, w in enumerate(sentence) if w) + l(J) * A[time_word])
                values.append(sum(l(j + 1) * C[w] for j, w in enumerate(sentence) if w) + l(J) * C[time_word])
        scores = np.array([u @ key for key in keys])  # the story fills the memory: no empty slot
        p = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
        np.testing.assert_allclose(out.attention[i, 0, : len(p)].detach().numpy(), p, rtol=1e-5)
        expected = (u + sum(w * v for w, v in zip(p, values))) @ C.T  # (V + sz,): the time words are classes too
        np.testing.assert_allclose(out.logits[i, 1:].detach().numpy(), expected[1:], rtol=1e-4, atol=1e-5)
        assert out.logits[i, 0] == 0  # the nil word: a class at logit 0


def test_without_table_answers_time_words_are_never_answers():
    model = MemN2N(MemN2NConfig(dim=4, encoding="position-release", time_words=True), tiny_sizes(8, memory_slots=3))
    logits = model(tiny_babi_batch([[2, 4], [6, 0]])).logits
    assert logits.shape[-1] == 8 + model.time_rows.item() and torch.isinf(logits[:, 8:]).all() and torch.isinf(logits[:, 0]).all()


def test_recent_only_reads_a_longer_story_as_its_most_recent_sentences():
    torch.manual_seed(0)
    model = MemN2N(MemN2NConfig(dim=6, **RELEASE_MODEL), tiny_sizes(8, memory_slots=2))
    batch = tiny_babi_batch([[2, 4], [6, 0]])  # the first story has 3 sentences, one more than the memory
    cut = StoryBatch(story=torch.stack([batch.story[0, 1:3], batch.story[1, :2]]), query=batch.query,
                     memory_mask=torch.stack([batch.memory_mask[0, 1:3], batch.memory_mask[1, :2]]),
                     time=torch.stack([batch.time[0, 1:3], batch.time[1, :2]]), supporting=batch.supporting,
                     target=batch.target, task=batch.task)
    whole, alone = model(batch), model(cut)
    torch.testing.assert_close(whole.logits, alone.logits)
    assert torch.all(whole.attention[0, :, 0] == 0)  # the oldest sentence fell out of the memory
    torch.testing.assert_close(whole.attention[0, :, 1:3], alone.attention[0])


@pytest.mark.parametrize("bad, message", [({"time_scale": True}, "needs encoding='position-release'"),
                                          ({"time_words": True, "temporal": False}, "need temporal=True")])
def test_release_switches_refuse_what_they_cannot_mean(bad, message):
    with pytest.raises(ValueError, match=message):
        MemN2NConfig(**bad)


# ---- the preset, end to end ---------------------------------------------------------------------

def test_the_release_preset_sets_every_switch():
    spec = resolve("memn2n", "release", task_options={"name": "babi:1"})
    assert spec.model.options() == {**spec.model.options(), **RELEASE_MODEL}
    assert (spec.train.lr, spec.train.linear_start, spec.train.epochs, spec.train.lr_halve_every) == (0.005, 20, 100, 25)
    assert (spec.train.lr_halve_at_multiples, spec.train.batch_sampling, spec.train.clip_measure, spec.train.noise_rule,
            spec.train.random_noise) == (True, "replacement", "spectral", "release", True)
    joint = resolve("memn2n", "release-joint", task_options={"name": "babi:all"})
    assert (joint.model.config.dim, joint.train.linear_start, joint.train.epochs, joint.train.lr_halve_every) == (50, 30, 60, 15)
    without = resolve("memn2n", "release", train_options={"clip_measure": "frobenius"}, task_options={"name": "babi:1"})
    assert without.train.clip_measure == "frobenius" and without.train.noise_rule == "release"  # one switch back: an ablation


def test_a_record_written_before_a_switch_existed_reads_as_its_default():
    spec = resolve("memn2n", "pe-ls-rn", task_options={"name": "babi:1"}).to_dict()
    older = {**spec, "train": {k: v for k, v in spec["train"].items() if k != "batch_sampling"},
             "model": {**spec["model"], "options": {k: v for k, v in spec["model"]["options"].items() if k != "time_words"}}}
    assert differences(older, spec) == []
    assert differences(older, resolve("memn2n", "release", task_options={"name": "babi:1"}).to_dict())  # still told apart


def test_a_release_run_trains_keeps_the_nil_rows_at_zero_and_cuts_to_its_memory(babi_dir, tmp_path):
    spec = resolve("memn2n", "release", {"dim": 8, "hops": 2}, {"epochs": 2, "linear_start": 1},
                   {"name": "babi:1", "data_dir": str(babi_dir)})
    summary = train_run(spec, tmp_path / "run", progress=False, device="cpu")
    assert summary["epochs"] == 3 and summary["linear_start_epochs"] == 1
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    sizes = load_data(spec.task).sizes
    for name, table in saved["model"].items():
        assert table.shape == (sizes.vocab_size + sizes.memory_slots, 8), name  # words, then sz time words
        assert torch.all(table[0] == 0), name  # the nil word's row stays zero
