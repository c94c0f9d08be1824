"""The transformer over sentence vectors: shapes, attention, one layer by hand, a population, a short run."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from memnet.inspection import load_run, split_support
from memnet.models import model_config
from memnet.models.story_transformer import StoryTransformer, StoryTransformerConfig
from memnet.spec import resolve
from tasks.generator import GeneratorConfig, generate_babi
from tests.conftest import tiny_babi_batch, tiny_sizes
from tests.test_population import assert_members_are_alone_runs, write_other_task


@pytest.mark.parametrize("layers, heads", [(1, 1), (3, 4)])
@pytest.mark.parametrize("encoding", ["bow", "position", "position-release"])
def test_attention_sums_to_one_on_valid_slots_and_is_zero_on_padding(layers, heads, encoding):
    model = StoryTransformer(StoryTransformerConfig(dim=8, attention_heads=heads, layers=layers, encoding=encoding), tiny_sizes(8))
    batch = tiny_babi_batch([[2, 4], [6, 0]])
    out = model(batch)
    assert out.logits.shape == (2, 8) and out.attention.shape == (2, layers, 4)
    assert torch.all(out.attention[~batch.memory_mask[:, None, :].expand_as(out.attention)] == 0)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(2, layers))
    assert torch.all(out.logits[:, 0] == -torch.inf)  # PAD is never an answer
    out.logits[:, 1:].sum().backward()
    assert all(p.grad is not None for name, p in model.named_parameters()), "every parameter learns"
    assert torch.all(model.words.weight.grad[0] == 0)


def test_one_layer_equals_a_hand_computation():
    """One head, one layer, bag of words: every token reads the sentences by softmax(q.k / sqrt(d))."""
    torch.manual_seed(0)
    d = 4
    model = StoryTransformer(StoryTransformerConfig(dim=d, attention_heads=1, layers=1, ffn=5, encoding="bow"), tiny_sizes(8))
    batch = tiny_babi_batch([[2, 4], [6, 0]])
    out = model(batch)
    numpy = lambda t: t.detach().numpy()
    E, T, Q = numpy(model.words.weight), numpy(model.times.weight), numpy(model.question)
    block = model.blocks[0]

    def norm(layer, x):
        return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + layer.eps) * numpy(layer.weight) + numpy(layer.bias)

    def linear(layer, x):
        return x @ numpy(layer.weight).T + numpy(layer.bias)

    for i in range(2):
        slots = [s for s in range(4) if batch.memory_mask[i, s]]
        sentences = np.stack([E[batch.story[i, s]].sum(0) + T[batch.time[i, s]] for s in slots])  # (m, d)
        x = np.concatenate([(E[batch.query[i]].sum(0) + Q)[None], sentences])  # (1 + m, d)
        keys = norm(block.norm_keys, x[1:])
        q, k, v = linear(block.query, norm(block.norm_read, x)), linear(block.key, keys), linear(block.value, keys)
        scores = q @ k.T / np.sqrt(d)
        p = np.exp(scores - scores.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        x = x + linear(block.out, p @ v)
        hidden = np.maximum(linear(block.ffn[0], norm(block.norm_ffn, x)), 0)
        x = x + linear(block.ffn[2], hidden)
        np.testing.assert_allclose(numpy(out.attention[i, 0, : len(slots)]), p[0], rtol=1e-5)
        logits = linear(model.answer, norm(model.norm, x[0]))
        np.testing.assert_allclose(numpy(out.logits[i, 1:]), logits[1:], rtol=1e-4, atol=1e-5)


def test_bad_options_say_what_is_valid():
    with pytest.raises(ValueError, match="not a multiple of attention_heads"):
        model_config("storyformer", {"dim": 10, "attention_heads": 4})
    with pytest.raises(ValueError, match="hops"):
        model_config("storyformer", {"hops": 3})


def test_tied_layers_are_one_block_read_again():
    config = dict(dim=8, attention_heads=2, layers=3)
    tied, untied = (StoryTransformer(StoryTransformerConfig(**config, tie_layers=tie), tiny_sizes(8)) for tie in (True, False))
    block = sum(p.numel() for p in untied.blocks[0].parameters())
    assert sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters()) == 2 * block
    assert len(tied.blocks) == 1
    out = tied(tiny_babi_batch([[2, 4], [6, 0]]))
    assert out.attention.shape == (2, 3, 4) and not torch.equal(out.attention[:, 0], out.attention[:, 1])


@pytest.mark.parametrize("tie_layers", [False, True])
def test_population_members_match_alone_runs(babi_dir, tmp_path, tie_layers):
    """Adam, random noise, two tasks of other vocabularies and memory sizes: each member is its run alone."""
    write_other_task(babi_dir / "en", 2, 30, seed=9)
    model = {"dim": 8, "attention_heads": 2, "layers": 2, "tie_layers": tie_layers}
    specs = [resolve("storyformer", "storyformer", model, {"epochs": 2, "seed": seed},
                     {"name": f"babi:{task}", "data_dir": str(babi_dir)}) for task, seed in [(1, 0), (2, 1)]]
    assert_members_are_alone_runs(specs, tmp_path)


def test_a_short_run_on_generated_tasks_trains_and_its_attention_is_inspectable(tmp_path):
    generate_babi(tmp_path / "gen", tasks=[1], config=GeneratorConfig(questions=60, seed=3))
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "memnet.cli", "train", "--model", "storyformer", "--preset", "storyformer",
                             "--task", "babi:1", "--data-dir", str(tmp_path / "gen"), "--out", str(out), "--epochs", "3",
                             "--dim", "8", "-o", "attention_heads=2", "--device", "cpu", "--quiet"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 3 and metrics[-1]["train_loss"] < metrics[0]["train_loss"]
    report = split_support(load_run(out), "test")
    assert report and all(len(shares) == 3 for shares in report.values())  # one read per layer
    shown = subprocess.run([sys.executable, "-m", "memnet.cli", "inspect", str(out)], capture_output=True, text=True)
    assert shown.returncode == 0 and "layer 3" in shown.stdout and "hop" not in shown.stdout, shown.stderr
