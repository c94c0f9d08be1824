"""GMemN2N (Liu and Perez 2017): shapes, attention, the gated update by hand, and short runs on generated tasks."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from memnet.inspection import load_run, split_support
from memnet.models import model_config
from memnet.models.gated_memn2n import GatedMemN2N, GatedMemN2NConfig
from memnet.models.memn2n import MemN2N, MemN2NConfig
from tasks.generator import GeneratorConfig, generate_babi
from tests.conftest import tiny_babi_batch, tiny_sizes


@pytest.mark.parametrize("gate_tying", ["hop", "global"])
@pytest.mark.parametrize("encoding", ["bow", "position", "position-release"])
def test_attention_sums_to_one_on_valid_slots_and_is_zero_on_padding(gate_tying, encoding):
    model = GatedMemN2N(GatedMemN2NConfig(hops=3, dim=6, encoding=encoding, gate_tying=gate_tying), tiny_sizes(8))
    batch = tiny_babi_batch([[2, 4], [6, 0]])
    out = model(batch)
    assert out.logits.shape == (2, 8) and out.attention.shape == (2, 3, 4)
    padding = ~batch.memory_mask[:, None, :].expand_as(out.attention)
    assert torch.all(out.attention[padding] == 0)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(2, 3))
    assert len(model.gates) == (3 if gate_tying == "hop" else 1)
    out.logits[:, 1:].sum().backward()
    assert all(gate.weight.grad.abs().sum() > 0 for gate in model.gates)


def test_the_gated_update_equals_a_hand_computation():
    """Two hops; each u^(k+1) = o^k * T + u^k * (1 - T), T = sigmoid(W_T^k u^k + b_T^k), by hand from MemN2N's reads."""
    torch.manual_seed(0)
    config = GatedMemN2NConfig(hops=2, dim=5, encoding="bow", gate_bias=-1.0)
    model = GatedMemN2N(config, tiny_sizes(8))
    batch = tiny_babi_batch([[2, 4], [6, 0]])
    logits = model(batch).logits.detach().numpy()
    E = [table.weight.detach().numpy() for table in model.words]  # B = A^1 = E0, C^1 = A^2 = E1, C^2 = W^T = E2
    T = [table.weight.detach().numpy() for table in model.times]
    gates = [(gate.weight.detach().numpy(), gate.bias.detach().numpy()) for gate in model.gates]
    assert np.all(gates[0][1] == -1.0)
    for i in range(2):
        u = sum(E[0][w] for w in batch.query[i].tolist())
        slots = [s for s in range(4) if batch.memory_mask[i, s]]
        for hop in range(2):
            A, C, TA, TC = E[hop], E[hop + 1], T[hop], T[hop + 1]
            keys = [sum(A[w] for w in batch.story[i, s].tolist()) + TA[batch.time[i, s]] for s in slots]
            values = [sum(C[w] for w in batch.story[i, s].tolist()) + TC[batch.time[i, s]] for s in slots]
            scores = np.array([u @ key for key in keys])
            p = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
            o = sum(weight * value for weight, value in zip(p, values))
            W, b = gates[hop]
            gate = 1 / (1 + np.exp(-(W @ u + b)))
            u = o * gate + u * (1 - gate)
        np.testing.assert_allclose(logits[i, 1:], (u @ E[2].T)[1:], rtol=1e-5, atol=1e-6)


def test_the_first_read_is_memn2ns_and_only_the_update_differs():
    """With MemN2N's tables the first hop reads the same; then u + o becomes o * T + u * (1 - T)."""
    torch.manual_seed(0)
    gated = GatedMemN2N(GatedMemN2NConfig(hops=2, dim=6), tiny_sizes(8))
    plain = MemN2N(MemN2NConfig(hops=2, dim=6), tiny_sizes(8))
    plain.load_state_dict({k: v for k, v in gated.state_dict().items() if not k.startswith("gates")})
    batch = tiny_babi_batch([[2, 4], [6, 0]])
    torch.testing.assert_close(gated(batch).attention[:, 0], plain(batch).attention[:, 0])
    assert not torch.allclose(gated(batch).attention[:, 1], plain(batch).attention[:, 1])
    u, o = torch.randn(2, 6), torch.randn(2, 6)
    gate = torch.sigmoid(u @ gated.gates[1].weight.T + gated.gates[1].bias)
    torch.testing.assert_close(gated.update(1, u, o), o * gate + u * (1 - gate))
    torch.testing.assert_close(plain.update(1, u, o), u + o)


@pytest.mark.parametrize("bad, message", [({"tying": "layerwise"}, "needs tying='adjacent'"),
                                          ({"gate_tying": "layer"}, "'hop' or 'global'"), ({"hidden": 3}, "hidden")])
def test_bad_options_say_what_is_valid(bad, message):
    with pytest.raises(ValueError, match=message):
        model_config("gmemn2n", bad)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    generate_babi(out, tasks=[1, 6], config=GeneratorConfig(questions=60, seed=3))
    return out


@pytest.mark.parametrize("preset", ["pe-ls-rn", "release"])
def test_a_short_run_on_generated_tasks_trains_and_its_attention_is_inspectable(generated, tmp_path, preset):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "memnet.cli", "train", "--model", "gmemn2n", "--preset", preset,
                             "--task", "babi:1", "--data-dir", str(generated), "--out", str(out), "--epochs", "3",
                             "--linear-start", "1", "--dim", "8", "--device", "cpu", "--quiet"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 4 and metrics[-1]["train_loss"] < metrics[0]["train_loss"]
    run = load_run(out)
    report = split_support(run, "test")  # the supporting-fact report reads the gated model's attention
    assert report and all(0 <= share <= 1 for shares in report.values() for share in shares)
    shown = subprocess.run([sys.executable, "-m", "memnet.cli", "inspect", str(out), "--count", "1"],
                           capture_output=True, text=True)
    assert shown.returncode == 0 and "hop 3" in shown.stdout, shown.stderr
