"""The Universal Transformer: shapes, ACT's weights, T steps of the block by hand, the ponder cost in the loss,
config errors, a population, a short run that learns."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.func import functional_call

from memnet.batches import IGNORE_INDEX
from memnet.inspection import load_run, split_support
from memnet.loop import loss_and_wrong
from memnet.models import model_config
from memnet.models.universal_transformer import UniversalTransformer, UniversalTransformerConfig, act_step
from memnet.population import member_loss
from memnet.spec import resolve
from tasks.generator import GeneratorConfig, generate_babi
from tests.conftest import tiny_babi_batch, tiny_sizes
from tests.test_population import assert_members_are_alone_runs, write_other_task

SMALL = dict(dim=8, attention_heads=2, ffn=16, steps=3)


def valid_tokens(batch) -> torch.Tensor:
    return torch.cat([torch.ones_like(batch.memory_mask[:, :1]), batch.memory_mask], 1)  # (b, n)


@pytest.mark.parametrize("halting", ["act", "fixed"])
@pytest.mark.parametrize("question_mask, temporal", [("own", False), ("shared", True)])
def test_shapes_masking_and_every_parameter_learns(halting, question_mask, temporal):
    torch.manual_seed(0)
    model = UniversalTransformer(UniversalTransformerConfig(**SMALL, halting=halting, question_mask=question_mask,
                                                            temporal=temporal), tiny_sizes(8))
    batch = tiny_babi_batch([[2, 4], [6, 0]])
    out = model(batch)
    assert out.logits.shape == (2, 8) and out.attention.shape == (2, 3, 4) and out.steps.shape == (2, 4)
    padding = ~batch.memory_mask
    assert torch.all(out.attention[padding[:, None, :].expand_as(out.attention)] == 0) and torch.all(out.steps[padding] == 0)
    assert torch.all(out.attention.sum(-1) < 1)  # the question also reads itself
    assert torch.all(out.logits[:, 0] == -torch.inf)  # PAD is never an answer
    if halting == "fixed":
        assert out.penalty is None and torch.all(out.steps[~padding] == 3)
    else:
        assert out.penalty.shape == (2,) and torch.all((out.steps[~padding] >= 1) & (out.steps[~padding] <= 4))
    (out.logits[:, 1:].sum() + (0 if out.penalty is None else out.penalty.sum())).backward()
    assert all(p.grad is not None for name, p in model.named_parameters()), "every parameter learns"
    assert torch.all(model.words.weight.grad[0] == 0)


@pytest.mark.parametrize("seed", [0, 1, 3])  # seeds whose positions halt at different steps
def test_the_halting_weights_that_mix_the_states_sum_to_one_per_position(seed):
    torch.manual_seed(seed)
    model = UniversalTransformer(UniversalTransformerConfig(**{**SMALL, "steps": 5}), tiny_sizes(8))
    torch.nn.init.normal_(model.halt.weight, std=0.2)  # halting probabilities spread out, so positions halt apart
    torch.nn.init.zeros_(model.halt.bias)
    batch = tiny_babi_batch([[2, 4], [6, 0]])
    run = model.recur(model.tokens(batch), valid_tokens(batch))
    assert run.weights.shape == (2, 5, 5) and torch.all(run.weights >= 0)
    torch.testing.assert_close(run.weights.sum(1), torch.ones(2, 5))
    taken = (run.weights > 0).sum(1)  # (b, n) the steps with weight: N
    remainder = run.weights.gather(1, (taken - 1)[:, None]).squeeze(1)  # (b, n) the last one's weight: R
    torch.testing.assert_close(run.ponder, taken + remainder)  # the ponder cost N + R
    assert len(set(taken.flatten().tolist())) > 1  # the positions did halt apart


@pytest.mark.parametrize("probabilities, weights, ponder", [
    ([0.3, 0.5, 0.4], [0.3, 0.5, 0.2], 3.2),  # reaches 1 - 0.01 at step 3: the remainder 0.2 there
    ([0.995, 0.5, 0.5], [1.0, 0.0, 0.0], 2.0),  # halts at once: N = 1, R = 1
    ([0.1, 0.1, 0.1], [0.1, 0.1, 0.8], 3.8),  # never reaches it: the last step takes the remainder
    ([0.6, 0.385, 0.9], [0.6, 0.385, 0.015], 3.015),  # 0.985 < 0.99: not yet at step 2
    ([0.6, 0.395, 0.9], [0.6, 0.4, 0.0], 2.4),  # 0.995: halts at step 2 with R = 0.4, and weighs nothing after
])
def test_act_steps_follow_graves_rule(probabilities, weights, ponder):
    total, running, cost, got = torch.zeros(1), torch.ones(1, dtype=torch.bool), torch.zeros(1), []
    for t, p in enumerate(probabilities, 1):
        weight, total, cost, halted = act_step(torch.tensor([p]), total, running, cost, 0.01, t == len(probabilities))
        running = running & ~halted
        got.append(weight.item())
    assert got == pytest.approx(weights, abs=1e-6) and cost.item() == pytest.approx(ponder, abs=1e-6)


def by_hand(model: UniversalTransformer, batch, row: int, steps: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The block applied `steps` times to one example's valid tokens, in numpy: every step's state (1 + m, d) and the
    question's attention over the sentences (m,), averaged over heads."""
    numpy = lambda t: t.detach().numpy()
    d, heads = model.config.dim, model.config.attention_heads
    E, F = numpy(model.words.weight), numpy(model.story_mask)
    G = F if model.question_mask is None else numpy(model.question_mask)
    block = model.block

    def norm(layer, x):
        return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + layer.eps) * numpy(layer.weight) + numpy(layer.bias)

    def linear(layer, x):
        return x @ numpy(layer.weight).T + numpy(layer.bias)

    def signal(position):  # eq. 4's sinusoid, written out
        return np.array([math.sin(position / 10000 ** (c / d)) if c % 2 == 0 else math.cos(position / 10000 ** ((c - 1) / d))
                         for c in range(d)])

    slots = [s for s in range(batch.story.shape[1]) if batch.memory_mask[row, s]]
    encode = lambda words, mask: sum(E[word] * mask[j] for j, word in enumerate(words.tolist()))
    h = np.stack([encode(batch.query[row], G)] + [encode(batch.story[row, s], F) for s in slots])  # (1 + m, d)
    states, reads = [], []
    for t in range(1, steps + 1):
        x = h + np.stack([signal(i) for i in range(1, len(h) + 1)]) + signal(t)
        y = norm(block.norm_read, x)
        q, k, v = (linear(layer, y) for layer in (block.query, block.key, block.value))
        e = d // heads
        outs, read = [], 0
        for head in range(heads):
            part = slice(head * e, (head + 1) * e)
            scores = q[:, part] @ k[:, part].T / np.sqrt(e)
            p = np.exp(scores - scores.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            outs.append(p @ v[:, part])
            read = read + p[0, 1:] / heads
        x = x + linear(block.out, np.concatenate(outs, -1))
        h = x + linear(block.ffn[2], np.maximum(linear(block.ffn[0], norm(block.norm_ffn, x)), 0))
        states.append(h)
        reads.append(read)
    return states, reads


def answer_by_hand(model, state: np.ndarray) -> np.ndarray:
    layer, answer = model.norm, model.answer
    x = (state - state.mean()) / np.sqrt(state.var() + layer.eps) * layer.weight.detach().numpy() + layer.bias.detach().numpy()
    return x @ answer.weight.detach().numpy().T + answer.bias.detach().numpy()


@pytest.mark.parametrize("question_mask", ["own", "shared"])
def test_fixed_steps_are_the_shared_block_applied_t_times_by_hand(question_mask):
    torch.manual_seed(0)
    model = UniversalTransformer(UniversalTransformerConfig(**SMALL, halting="fixed", question_mask=question_mask), tiny_sizes(8))
    with torch.no_grad():
        model.story_mask.normal_()  # masks away from their start at 1, so a wrong place or mask would show
        if model.question_mask is not None:
            model.question_mask.normal_()
    batch = tiny_babi_batch([[2, 4], [6, 0]])
    out = model(batch)
    for row in range(2):
        states, reads = by_hand(model, batch, row, 3)
        m = len(reads[0])
        np.testing.assert_allclose(out.attention[row, :, :m].detach().numpy(), np.stack(reads), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(out.logits[row, 1:].detach().numpy(), answer_by_hand(model, states[-1][0])[1:], rtol=1e-4, atol=1e-5)


def test_act_mixes_the_step_states_by_halting_probabilities_and_copies_halted_states():
    """p = 0.6 everywhere: every position takes steps 1 and 2 (0.6 + 0.6 reaches 0.99), weighs them 0.6 and 0.4,
    and keeps its state after; its ponder cost is 2.4, and the question reads nothing at steps 3 and 4."""
    torch.manual_seed(1)
    model = UniversalTransformer(UniversalTransformerConfig(**{**SMALL, "steps": 4}, ponder_weight=0.5), tiny_sizes(8))
    with torch.no_grad():
        model.halt.weight.zero_()
        model.halt.bias.fill_(math.log(0.6 / 0.4))
    batch = tiny_babi_batch([[2, 4], [6, 0]])
    out = model(batch)
    torch.testing.assert_close(out.steps, 2.4 * batch.memory_mask.float())
    torch.testing.assert_close(out.penalty, torch.full((2,), 0.5 * 2.4))
    assert torch.all(out.attention[:, 2:] == 0)
    for row in range(2):
        states, reads = by_hand(model, batch, row, 2)
        np.testing.assert_allclose(out.attention[row, :2, : len(reads[0])].detach().numpy(), np.stack(reads), rtol=1e-4, atol=1e-6)
        mixed = 0.6 * states[0][0] + 0.4 * states[1][0]
        np.testing.assert_allclose(out.logits[row, 1:].detach().numpy(), answer_by_hand(model, mixed)[1:], rtol=1e-4, atol=1e-5)


def test_the_ponder_cost_enters_the_loss_alone_and_in_a_population_except_on_padding_rows():
    torch.manual_seed(0)
    model = UniversalTransformer(UniversalTransformerConfig(**SMALL, ponder_weight=0.5), tiny_sizes(8))
    batch = tiny_babi_batch([[2, 4], [6, 0]])
    out = model(batch)
    cross_entropy = torch.nn.functional.cross_entropy(out.logits, batch.target, reduction="sum")
    alone, _ = loss_and_wrong(out, batch.target)
    torch.testing.assert_close(alone, cross_entropy + out.penalty.sum())
    params, buffers = dict(model.named_parameters()), dict(model.named_buffers())
    member, _ = member_loss(model, params, buffers, batch, torch.tensor(8))
    torch.testing.assert_close(member, alone)
    padded = batch.rows(slice(None))
    padded.target[1] = IGNORE_INDEX  # a population's padding row: no cross-entropy and no penalty
    member, _ = member_loss(model, params, buffers, padded, torch.tensor(8))
    one = functional_call(model, (params, buffers), (batch,))
    torch.testing.assert_close(member, torch.nn.functional.cross_entropy(one.logits[:1], batch.target[:1], reduction="sum")
                               + one.penalty[0])


@pytest.mark.parametrize("options, field", [({"dim": 10, "attention_heads": 4}, "attention_heads"), ({"steps": 0}, "steps"),
                                            ({"act_threshold": 1.0}, "act_threshold"), ({"halting": "sometimes"}, "halting"),
                                            ({"ponder_weight": -1}, "ponder_weight"), ({"question_mask": "mine"}, "question_mask"),
                                            ({"hops": 3}, "hops")])
def test_bad_options_name_the_field(options, field):
    with pytest.raises(ValueError, match=field):
        model_config("ut", options)


@pytest.mark.parametrize("halting", ["act", "fixed"])
def test_population_members_match_alone_runs(babi_dir, tmp_path, halting):
    """Adam, two tasks of other vocabularies, sentence widths and memory sizes: each member is its run alone, its
    ponder cost included."""
    write_other_task(babi_dir / "en", 2, 30, seed=9)
    model = {**SMALL, "halting": halting, "ponder_weight": 0.1, "temporal": True}
    specs = [resolve("ut", "ut", model, {"epochs": 2, "seed": seed, "random_noise": True},
                     {"name": f"babi:{task}", "data_dir": str(babi_dir)}) for task, seed in [(1, 0), (2, 1)]]
    assert_members_are_alone_runs(specs, tmp_path)


def test_a_short_run_of_the_cpu_preset_on_generated_tasks_learns_task_1_and_is_inspectable(tmp_path):
    """Preset `ut` as it is, 12 epochs of 1,000 generated questions (about 6 s on one thread; two threads fighting over
    a busy 2-core box took 20 times as long): seeds 0-2 gave 1.3-4.6% test error."""
    generate_babi(tmp_path / "gen", tasks=[1], config=GeneratorConfig(questions=1000, seed=3))
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "memnet.cli", "train", "--model", "ut", "--preset", "ut", "--task", "babi:1",
                             "--data-dir", str(tmp_path / "gen"), "--out", str(out), "--epochs", "12", "--device", "cpu",
                             "--quiet"], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_error"]["all"] < 10, summary["test_error"]  # chance: 5 answers in 6 wrong
    report = split_support(load_run(out), "test")
    assert report and all(len(shares) == 4 for shares in report.values())  # one read per step
    shown = subprocess.run([sys.executable, "-m", "memnet.cli", "inspect", str(out)], capture_output=True, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert shown.returncode == 0 and "step 4" in shown.stdout and "steps" in shown.stdout, shown.stderr
