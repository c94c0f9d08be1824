"""The QA baselines (lstm, gru, rnn, attentive): shapes, masking, padding, and tiny end-to-end runs."""

import pytest
import torch

from memnet.echo import EchoConfig, train_echo
from memnet.models import MODELS, build_model, model_config
from memnet.models.attentive import AttentiveConfig
from memnet.models.recurrent import Recurrent, RecurrentConfig, babi_sequence
from memnet.train import TrainConfig, train_run
from tasks import registry
from tests.conftest import tiny_babi_batch

RECURRENT = ["lstm", "gru", "rnn"]


def tiny_batch():
    """The shared tiny bAbI batch (vocabulary of 10)."""
    return tiny_babi_batch([[8, 4], [9, 0]])


def with_more_padding(batch):
    """The same stories with one more empty slot and one more padded word in every sentence."""
    story = torch.nn.functional.pad(batch["story"], (0, 1, 0, 1))
    return {**batch, "story": story, "memory_mask": torch.nn.functional.pad(batch["memory_mask"], (0, 1)),
            "time": torch.nn.functional.pad(batch["time"], (0, 1)), "query": torch.nn.functional.pad(batch["query"], (0, 2))}


def build(name: str, **options):
    torch.manual_seed(0)
    return build_model(name, model_config(name, {"vocab_size": 10, "num_classes": 10, "memory_size": 4}, options))


@pytest.mark.parametrize("name", RECURRENT + ["attentive"])
def test_babi_forward_backward_shapes(name):
    model, batch = build(name, hidden=6, embed_dim=5), tiny_batch()
    out = model(batch)
    assert out.logits.shape == (2, 10)
    assert out.attention is None if name in RECURRENT else out.attention.shape == (2, 1, 4)
    out.logits.logsumexp(-1).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", RECURRENT + ["attentive"])
def test_padding_changes_nothing(name):
    model, batch = build(name, hidden=6, embed_dim=5).eval(), tiny_batch()
    torch.testing.assert_close(model(batch).logits, model(with_more_padding(batch)).logits)


def test_babi_sequence_reads_valid_words_in_order_then_the_question():
    batch = tiny_batch()
    batch["story"][1, 3] = torch.tensor([7, 7, 7])  # words in a slot the mask calls empty must not be read
    tokens, lengths = babi_sequence(batch)
    expected = [[2, 3, 4, 5, 6, 7, 2, 8, 4], [3, 3, 5, 9]]  # written out by hand from tiny_batch
    assert lengths.tolist() == [len(row) for row in expected]
    for row, want in zip(tokens.tolist(), expected):
        assert row[: len(want)] == want and all(t == 0 for t in row[len(want):])


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_packed_final_state_equals_reading_each_row_alone(cell):
    torch.manual_seed(0)
    model = Recurrent(RecurrentConfig(vocab_size=10, num_classes=4, cell=cell, hidden=5, embed_dim=3)).eval()
    inputs = torch.tensor([[2, 3, 4, 5, 3], [6, 7, 0, 0, 0], [9, 0, 0, 0, 0]])
    lengths = torch.tensor([5, 2, 1])
    logits = model({"input": inputs, "lengths": lengths}).logits
    for i in range(3):
        outputs, _ = model.steps(inputs[i : i + 1, : lengths[i]])  # (1, L, h): no padding at all
        torch.testing.assert_close(logits[i], model.head(outputs[0, -1]))


def test_lstm_gate_initialisation():
    lstm = Recurrent(RecurrentConfig(vocab_size=5, num_classes=2, hidden=8, forget_bias=1.0)).rnn
    forget = lstm.bias_ih_l0[8:16] + lstm.bias_hh_l0[8:16]
    torch.testing.assert_close(forget, torch.ones(8))
    chrono = Recurrent(RecurrentConfig(vocab_size=5, num_classes=2, hidden=8, chrono=50)).rnn
    forget, input_gate = chrono.bias_ih_l0[8:16] + chrono.bias_hh_l0[8:16], chrono.bias_ih_l0[:8] + chrono.bias_hh_l0[:8]
    assert forget.min() >= 0 and forget.max() <= torch.log(torch.tensor(49.0))  # log U(1, T - 1)
    torch.testing.assert_close(input_gate, -forget)


def test_attention_sums_to_one_on_valid_slots_and_is_zero_on_padding():
    model, batch = build("attentive", hidden=6, embed_dim=5), tiny_batch()
    weights = model(batch).attention  # (b, 1, m)
    padding = ~batch["memory_mask"][:, None, :]
    assert torch.all(weights[padding] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 1))


def test_registry_names_and_bad_options():
    assert {"lstm", "gru", "rnn", "attentive"} <= set(MODELS)
    assert [model_config(n, {"vocab_size": 5, "num_classes": 5}, {}).cell for n in RECURRENT] == ["LSTM", "GRU", "RNN"]
    with pytest.raises(ValueError, match="unknown cell"):
        RecurrentConfig(vocab_size=5, num_classes=5, cell="TCN")
    with pytest.raises(ValueError, match="chrono applies to the LSTM"):
        model_config("gru", {"vocab_size": 5, "num_classes": 5}, {"chrono": 20})
    with pytest.raises(ValueError, match="has no option hops"):
        model_config("lstm", {"vocab_size": 5, "num_classes": 5}, {"hops": 2})
    with pytest.raises(ValueError, match="dropout"):
        AttentiveConfig(vocab_size=5, num_classes=5, dropout=1.5)


# ---- tiny end-to-end runs through the training loop ---------------------------------------------

FAST = TrainConfig(epochs=2, batch_size=16, optimizer="adam", lr=0.01, lr_halve_every=0, device="cpu")


@pytest.mark.parametrize("name", RECURRENT + ["attentive"])
def test_train_on_babi_fixture(name, babi_dir, tmp_path):
    data = registry.load("babi:1", data_dir=babi_dir, memory_size=10)
    summary = train_run(name, {"hidden": 8, "embed_dim": 8}, FAST, data, {"data_dir": str(babi_dir)}, tmp_path / name, progress=False)
    assert summary["epochs"] == 2 and 0 <= summary["test_error"]["all"] <= 100
    assert {"config.json", "metrics.jsonl", "summary.json", "checkpoint.pt"} <= {p.name for p in (tmp_path / name).iterdir()}


@pytest.mark.parametrize("name", RECURRENT)
def test_train_on_temporal_order(name, tmp_path):
    data = registry.load("temporal:easy,train=64,valid=16,test=16")
    summary = train_run(name, {"hidden": 4}, FAST, data, {}, tmp_path / name, progress=False)
    assert summary["epochs"] == 2 and 0 <= summary["test_error"]["all"] <= 100


def test_lstm_learns_easy_temporal_order(tmp_path):
    """Can fail for the right reason: an LSTM that cannot carry X/Y to the end stays near 75% error."""
    data = registry.load("temporal:easy,train=300,valid=50,test=200")
    config = TrainConfig(epochs=6, optimizer="adam", lr=0.01, lr_halve_every=0, device="cpu")
    summary = train_run("lstm", {"hidden": 8}, config, data, {}, tmp_path / "lstm", progress=False)
    assert summary["test_error"]["all"] < 10


def test_echo_trains_with_truncated_bptt():
    result = train_echo(EchoConfig(cell="LSTM", hidden=8, echo_step=2, chunk=10, streams=4, steps=400, epochs=6, test_steps=200))
    assert len(result["test_accuracy"]) == 6
    assert result["test_accuracy"][0] < 0.9  # it starts near chance (0.5) ...
    assert result["test_accuracy"][-1] > 0.95  # ... and recalls the delayed bits only if state carries across chunks
