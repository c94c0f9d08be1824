"""The encoder-decoder: shapes, masked attention, teacher forcing vs greedy decoding, the additive
score against a hand computation, and tiny runs through the training loop."""

import dataclasses

import pytest
import torch
from pydantic import ValidationError

from memnet.batches import IGNORE_INDEX, DataSizes, Seq2SeqBatch
from memnet.models.seq2seq import Additive, Seq2Seq, Seq2SeqConfig
from memnet.spec import resolve
from memnet.train import train_run
from tasks import registry

V = 9  # PAD 0, symbols 1..6, BOS 7, EOS 8 in these hand-made batches
BOS, EOS = 7, 8


def tiny_batch() -> Seq2SeqBatch:
    """Reverse of [3, 4, 5] and of [6, 2], the second source padded."""
    return Seq2SeqBatch(
        source=torch.tensor([[3, 4, 5], [6, 2, 0]]),
        source_mask=torch.tensor([[True, True, True], [True, True, False]]),
        decoder_input=torch.tensor([[BOS, 5, 4, 3], [BOS, 2, 6, 0]]),
        length=torch.tensor([3, 2]),
        target=torch.tensor([[5, 4, 3, EOS], [2, 6, EOS, IGNORE_INDEX]]),
        task=torch.zeros(2, dtype=torch.long),
    )


def build(**options) -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(Seq2SeqConfig(dim=5, hidden=6, **options), DataSizes(vocab_size=V, num_classes=V))


VARIANTS = [dict(cell=c, attention=a, bidirectional=b) for c in ("GRU", "LSTM") for a in ("additive", "dot", "none") for b in (False, True)]


@pytest.mark.parametrize("options", VARIANTS, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_forward_backward_shapes(options):
    model, batch = build(**options), tiny_batch()
    for training in (True, False):
        model.train(training)
        out = model(batch)
        assert out.logits.shape == (2, 4, V)
        assert out.attention is None if options["attention"] == "none" else out.attention.shape == (2, 4, 3)
    model.train()
    model(batch).logits.logsumexp(-1).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("attention", ["additive", "dot"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_attention_rows_sum_to_one_and_padding_gets_none(attention, bidirectional):
    model, batch = build(attention=attention, bidirectional=bidirectional), tiny_batch()
    for training in (True, False):
        weights = model.train(training)(batch).attention  # (b, t, s)
        padding = ~batch.source_mask[:, None, :].expand_as(weights)
        assert torch.all(weights[padding] == 0)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4))


PADDED = [dict(cell=c, bidirectional=b, hidden=6) for c in ("GRU", "LSTM") for b in (False, True)] + [
    dict(attention=a) for a in ("pointer", "shift")]  # the pointer attentions have no encoder (memnet.models.pointer)


@pytest.mark.parametrize("options", PADDED, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_more_source_padding_changes_nothing(options):
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(dim=5, **options), DataSizes(vocab_size=V, num_classes=V)).eval()
    batch = tiny_batch()
    padded = dataclasses.replace(batch, source=torch.nn.functional.pad(batch.source, (0, 2)),
                                 source_mask=torch.nn.functional.pad(batch.source_mask, (0, 2)))
    out, out_padded = model(batch), model(padded)
    torch.testing.assert_close(out.logits, out_padded.logits)
    torch.testing.assert_close(out.attention, out_padded.attention[:, :, :3])


def test_eval_decodes_greedily_and_training_forces_the_teacher():
    model, batch = build(), tiny_batch()
    model.eval()
    greedy = model(batch).logits
    scrambled = dataclasses.replace(batch, decoder_input=batch.decoder_input.clone())
    scrambled.decoder_input[:, 1:] = 1  # eval mode reads only the BOS column
    torch.testing.assert_close(model(scrambled).logits, greedy)
    # Independent check: teacher-force the model's own greedy choices and get the same logits.
    fed = dataclasses.replace(batch, decoder_input=torch.cat([batch.decoder_input[:, :1], greedy.argmax(-1)[:, :-1]], 1))
    model.train()  # no dropout in this model, so train mode differs only in what it reads
    torch.testing.assert_close(model(fed).logits, greedy)
    assert not torch.allclose(model(scrambled).logits, greedy)  # and training does read decoder_input


def test_additive_score_matches_a_hand_computation():
    torch.manual_seed(0)
    score = Additive(4)
    query, memory = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    got = score(query, score.keys(memory))  # (b, q, s)
    W, U, u_bias, v = score.W.weight, score.U.weight, score.U.bias, score.v.weight[0]
    for b in range(2):
        for i in range(3):
            for j in range(5):
                expected = v @ torch.tanh(W @ query[b, i] + U @ memory[b, j] + u_bias)
                torch.testing.assert_close(got[b, i, j], expected)


def test_bad_options_are_errors():
    with pytest.raises(ValidationError, match="'additive', 'dot', 'none', 'pointer' or 'shift'"):
        Seq2SeqConfig(attention="multihead")
    with pytest.raises(ValidationError, match="'GRU' or 'LSTM'"):
        Seq2SeqConfig(cell="RNN")
    with pytest.raises(ValidationError, match="bidirectional=True needs an even hidden"):
        Seq2SeqConfig(hidden=7, bidirectional=True)
    with pytest.raises(ValidationError, match="embed_dim"):  # renamed: --dim is the embedding size of every model
        Seq2SeqConfig(embed_dim=8)


FAST = {"epochs": 2, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "lr_halve_every": 0}


def train(task: str, options: dict, training: dict, out) -> dict:
    return train_run(resolve("seq2seq", None, options, training, {"name": task}), out, progress=False, device="cpu")


@pytest.mark.parametrize("family", ["copy", "reverse", "sort"])
@pytest.mark.parametrize("attention", ["additive", "dot", "none"])
def test_train_through_the_loop(family, attention, tmp_path):
    task = f"{family}:train=2-4,test=2-6,size=64,per_length=4"
    assert registry.load(task).sizes.vocab_size == 14  # 10 symbols, PAD, UNK, BOS, EOS
    summary = train(task, {"attention": attention, "hidden": 8, "dim": 4}, FAST, tmp_path / "run")
    assert summary["epochs"] == 2 and 0 <= summary["test_error"]["all"] <= 100


def test_attention_model_learns_to_copy(tmp_path):
    """Can fail for the right reason: exact match stays near 0 unless decoding and attention work."""
    summary = train("copy:train=2-4,test=2-4,symbols=4,size=1000,per_length=50", {"hidden": 32, "dim": 8},
                    {**FAST, "epochs": 6}, tmp_path / "run")
    assert summary["test_error"]["all"] < 10
