"""The query-reduction network: shapes and gates, the parallel form against the recurrence, the whole model by
hand, a population, AdaGrad and the mean loss, a short run that learns task 1."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from memnet.batches import StoryBatch
from memnet.inspection import load_run, split_support
from memnet.models import model_config
from memnet.models.qrn import QRN, QRNConfig, reduce, reduce_stepwise
from memnet.spec import SpecError, resolve
from tasks.generator import GeneratorConfig, generate_babi
from tests.conftest import tiny_babi_batch, tiny_sizes
from tests.test_population import assert_members_are_alone_runs, write_other_task


@pytest.mark.parametrize("layers, reset, bidirectional, tie", [(1, True, True, True), (2, True, True, True), (3, False, False, False)])
@pytest.mark.parametrize("encoding", ["position-fixed", "position", "bow"])
def test_gates_lie_in_0_1_and_are_zero_on_empty_slots(layers, reset, bidirectional, tie, encoding):
    config = QRNConfig(dim=8, layers=layers, reset=reset, bidirectional=bidirectional, tie_layers=tie, encoding=encoding)
    model = QRN(config, tiny_sizes(8))
    batch = tiny_babi_batch([[2, 4], [6, 0]])
    out = model(batch)
    assert out.logits.shape == (2, 8) and out.attention.shape == (2, layers, 4)
    assert torch.all((out.attention >= 0) & (out.attention <= 1))
    assert torch.all(out.attention[~batch.memory_mask[:, None, :].expand_as(out.attention)] == 0)
    assert torch.all(out.logits[:, 0] == -torch.inf)  # PAD is never an answer
    out.logits[:, 1:].sum().backward()
    unused = set() if layers > 1 and reset else {"reset"}  # the last layer has no reset gate
    for name, parameter in model.named_parameters():
        if not any(part in name for part in unused):
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, f"{name} learns"
    assert torch.all(model.words.weight.grad[0] == 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_parallel_form_equals_the_recurrence(seed):
    generator = torch.Generator().manual_seed(seed)
    candidate = torch.randn(4, 12, 5, generator=generator)
    update = torch.rand(4, 12, generator=generator)
    update[0, 3], update[1, 7:] = 1.0, 0.0  # a gate wide open (the past forgotten at once), and padding
    write = update * torch.rand(4, 12, generator=generator)
    torch.testing.assert_close(reduce(candidate, write, update), reduce_stepwise(candidate, write, update), rtol=1e-5, atol=1e-6)


def test_a_hand_computed_step():
    """One sentence, one layer: h_1 = z h~ with z = sigmoid(w_z . (x * q) + b_z - 2.5), h~ = tanh(W_h [q; x] + b_h)."""
    torch.manual_seed(0)
    model = QRN(QRNConfig(dim=3, layers=1, encoding="bow"), tiny_sizes(8))
    story = torch.tensor([[[2, 3, 0], [0, 0, 0]]])  # one story of one sentence, and an empty slot
    batch = StoryBatch(story=story, query=torch.tensor([[4, 5]]), memory_mask=story[..., 0] != 0, time=torch.zeros(1, 2, dtype=torch.long),
                       supporting=torch.full((1, 1), -1), target=torch.tensor([3]), task=torch.tensor([1]))
    out = model(batch)
    E, unit = model.words.weight.detach().numpy(), model.units[0]
    x, q = E[batch.story[0, 0]].sum(0), E[batch.query[0]].sum(0)
    w = lambda layer: (layer.weight.detach().numpy(), layer.bias.detach().numpy())
    (wz, bz), (wh, bh) = w(unit.update), w(unit.candidate)
    z = 1 / (1 + np.exp(-((wz @ (x * q))[0] + bz[0] - 2.5)))
    h = z * np.tanh(wh @ np.concatenate([q, x]) + bh)
    np.testing.assert_allclose(out.attention[0, 0, 0].item(), z, rtol=1e-5)
    np.testing.assert_allclose(out.logits[0, 1:].detach().numpy(), (model.answer.weight.detach().numpy() @ h)[1:], rtol=1e-5, atol=1e-6)


def test_two_bidirectional_layers_with_reset_equal_a_hand_computation():
    """The whole model, step by step in numpy: layer 1 forward and backward with reset gates, their sum the query of
    layer 2 at each step, layer 2 forward without reset, the answer from its last state; weights shared."""
    torch.manual_seed(1)
    d = 4
    model = QRN(QRNConfig(dim=d, layers=2, encoding="position-fixed"), tiny_sizes(8))
    batch = tiny_babi_batch([[2, 4], [6, 0]])
    out = model(batch)
    numpy = lambda t: t.detach().numpy()
    E, J, unit = numpy(model.words.weight), float(model.sentence_width), model.units[0]
    k = np.arange(1, d + 1)

    def encode(words):  # (1 - j/J) - (k/d)(1 - 2j/J) over the data's fixed width J
        return sum(E[word] * ((1 - j / J) - (k / d) * (1 - 2 * j / J)) for j, word in enumerate(words.tolist(), 1) if word)

    sigmoid = lambda v: 1 / (1 + np.exp(-v))
    linear = lambda layer, v: numpy(layer.weight) @ v + numpy(layer.bias)

    def run(xs, qs, write):  # the recurrence over steps; write(t, z, r) -> the candidate's weight
        h, states, gates = np.zeros(d), [], []
        for t, (x, q) in enumerate(zip(xs, qs)):
            z = sigmoid(linear(unit.update, x * q)[0] - 2.5)
            r = sigmoid(linear(unit.reset, x * q))
            h = write(z, r) * np.tanh(linear(unit.candidate, np.concatenate([q, x]))) + (1 - z) * h
            states.append(h)
            gates.append(z)
        return states, gates

    for i in range(2):
        slots = [s for s in range(4) if batch.memory_mask[i, s]]
        xs = [encode(batch.story[i, s]) for s in slots]
        q = encode(batch.query[i])
        forward, z1 = run(xs, [q] * len(xs), lambda z, r: z * r[0])
        backward, _ = run(xs[::-1], [q] * len(xs), lambda z, r: z * r[1])
        queries = [f + b for f, b in zip(forward, backward[::-1])]
        last, z2 = run(xs, queries, lambda z, r: z)
        np.testing.assert_allclose(numpy(out.attention[i, 0, : len(slots)]), z1, rtol=1e-5)
        np.testing.assert_allclose(numpy(out.attention[i, 1, : len(slots)]), z2, rtol=1e-5)
        np.testing.assert_allclose(numpy(out.logits[i, 1:]), (numpy(model.answer.weight) @ last[-1])[1:], rtol=1e-4, atol=1e-6)


def test_bad_options_say_what_is_valid():
    with pytest.raises(ValueError, match="layers"):
        model_config("qrn", {"layers": 0})
    with pytest.raises(ValueError, match="hops"):
        model_config("qrn", {"hops": 3})
    with pytest.raises(SpecError, match="weight_decay applies to optimizers adam, adamw and adagrad only"):
        resolve("qrn", None, {}, {"optimizer": "sgd", "weight_decay": 0.001}, {"name": "babi:1"})


@pytest.mark.parametrize("layers", [1, 2])
def test_population_members_match_alone_runs(babi_dir, tmp_path, layers):
    """The preset's AdaGrad, L2 weight decay and mean loss; two tasks of other vocabularies and memory sizes."""
    write_other_task(babi_dir / "en", 2, 30, seed=9)
    specs = [resolve("qrn", "qrn", {"dim": 8, "layers": layers}, {"epochs": 2, "seed": seed},
                     {"name": f"babi:{task}", "data_dir": str(babi_dir)}) for task, seed in [(1, 0), (2, 1)]]
    assert specs[0].train.optimizer == "adagrad" and specs[0].train.loss == "mean" and specs[0].train.weight_decay > 0
    assert_members_are_alone_runs(specs, tmp_path)


@pytest.mark.parametrize("preset, optimizer", [("qrn-late-l2", "adagrad"), ("qrn-adam", "adam")])  # per task; joint
def test_population_members_of_the_chosen_settings_match_alone_runs(babi_dir, tmp_path, preset, optimizer):
    starts = {"weight_decay_from": 1} if preset == "qrn-late-l2" else {}  # its L2 penalty within 3 epochs, not from 30
    specs = [resolve("qrn", preset, {"dim": 8}, {"epochs": 3, "seed": seed, **starts}, {"name": "babi:1", "data_dir": str(babi_dir)})
             for seed in (0, 1)]
    assert specs[0].train.optimizer == optimizer and specs[0].train.loss == "mean"
    assert_members_are_alone_runs(specs, tmp_path)


def test_a_short_run_on_generated_tasks_learns_task_1(tmp_path):
    generate_babi(tmp_path / "gen", tasks=[1], config=GeneratorConfig(questions=300, seed=3))
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "memnet.cli", "train", "--model", "qrn", "--task", "babi:1",
                             "--data-dir", str(tmp_path / "gen"), "--out", str(out), "--epochs", "30", "--dim", "20",
                             "--device", "cpu", "--quiet"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["preset"] == "qrn-late-l2-150"  # the model's default preset per task: its setting chosen on validation
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_error"]["all"] < 20, summary  # chance is 5 places in 6
    report = split_support(load_run(out), "test")
    assert report and all(len(shares) == 2 for shares in report.values())  # one update gate a layer
    shown = subprocess.run([sys.executable, "-m", "memnet.cli", "inspect", str(out)], capture_output=True, text=True)
    assert shown.returncode == 0 and "layer 2" in shown.stdout and "hop" not in shown.stdout, shown.stderr
    assert "empty memories" not in shown.stdout  # gates, not a distribution: nothing is left for empty memories


def test_code_init_draws_the_embedding_and_gates_as_the_official_code():
    """init="code": embedding and gate weights uniform in [-sqrt 3, sqrt 3] (std 1); "paper": N(0, 1/sqrt d)."""
    sizes = tiny_sizes(40)
    torch.manual_seed(0)
    code, paper = (QRN(QRNConfig(dim=64, init=init), sizes) for init in ("code", "paper"))
    for weight in (code.words.weight[1:], code.units[0].update.weight, code.units[0].reset.weight):
        assert weight.abs().max() <= 3**0.5 and 0.85 < weight.std() < 1.15
    assert code.words.weight[0].abs().sum() == 0  # PAD stays zero
    assert 0.1 < paper.words.weight[1:].std() < 0.15  # 1/sqrt(64) = 0.125
    assert paper.units[0].update.weight.std() < 0.3  # Glorot-uniform
