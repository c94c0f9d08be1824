"""The QA baselines (lstm, gru, rnn, attentive): shapes, masking, padding, and tiny end-to-end runs."""

import dataclasses

import pytest
import torch
from pydantic import ValidationError

from memnet.batches import DataSizes, SequenceBatch
from memnet.echo import EchoConfig, train_echo
from memnet.models import MODELS, build_model, model_config
from memnet.models.attentive import AttentiveConfig
from memnet.models.recurrent import GRUConfig, LSTMConfig, Recurrent
from memnet.spec import resolve
from memnet.train import train_run
from tests.conftest import tiny_babi_batch, tiny_sizes

RECURRENT = ["lstm", "gru", "rnn"]


def tiny_batch():
    """The shared tiny bAbI batch (vocabulary of 10)."""
    return tiny_babi_batch([[8, 4], [9, 0]])


def with_more_padding(batch):
    """The same stories with one more empty slot and one more padded word in every sentence."""
    pad = torch.nn.functional.pad
    return dataclasses.replace(batch, story=pad(batch.story, (0, 1, 0, 1)), memory_mask=pad(batch.memory_mask, (0, 1)),
                               time=pad(batch.time, (0, 1)), query=pad(batch.query, (0, 2)))


def build(name: str, **options):
    torch.manual_seed(0)
    return build_model(name, model_config(name, options), tiny_sizes(10))


@pytest.mark.parametrize("name", RECURRENT + ["attentive"])
def test_babi_forward_backward_shapes(name):
    model, batch = build(name, hidden=6, dim=5), tiny_batch()
    out = model(batch)
    assert out.logits.shape == (2, 10)
    assert out.attention is None if name in RECURRENT else out.attention.shape == (2, 1, 4)
    out.logits.logsumexp(-1).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", RECURRENT + ["attentive"])
def test_padding_changes_nothing(name):
    model, batch = build(name, hidden=6, dim=5).eval(), tiny_batch()
    torch.testing.assert_close(model(batch).logits, model(with_more_padding(batch)).logits)


def test_babi_sequence_reads_valid_words_in_order_then_the_question():
    batch = tiny_batch()
    batch.story[1, 3] = torch.tensor([7, 7, 7])  # words in a slot the mask calls empty must not be read
    tokens, lengths = batch.sequence()
    expected = [[2, 3, 4, 5, 6, 7, 2, 8, 4], [3, 3, 5, 9]]  # written out by hand from tiny_batch
    assert lengths.tolist() == [len(row) for row in expected]
    for row, want in zip(tokens.tolist(), expected):
        assert row[: len(want)] == want and all(t == 0 for t in row[len(want):])


def sequences(inputs: list[list[int]]) -> SequenceBatch:
    """A SequenceBatch of rows padded with 0 (the classes and positions are not read by the models)."""
    inputs = torch.tensor(inputs)
    lengths, zeros = (inputs != 0).sum(1), torch.zeros(len(inputs), dtype=torch.long)
    return SequenceBatch(input=inputs, lengths=lengths, mask=inputs != 0, t1=zeros, t2=zeros, target=zeros, task=zeros)


@pytest.mark.parametrize("name", RECURRENT)
def test_packed_final_state_equals_reading_each_row_alone(name):
    torch.manual_seed(0)
    model = build_model(name, model_config(name, {"hidden": 5, "dim": 3}), DataSizes(vocab_size=10, num_classes=4)).eval()
    batch = sequences([[2, 3, 4, 5, 3], [6, 7, 0, 0, 0], [9, 0, 0, 0, 0]])
    inputs, lengths = batch.input, batch.lengths
    logits = model(batch).logits
    for i in range(3):
        outputs, _ = model.steps(inputs[i : i + 1, : lengths[i]])  # (1, L, h): no padding at all
        torch.testing.assert_close(logits[i], model.head(outputs[0, -1]))


def test_lstm_gate_initialisation():
    sizes = DataSizes(vocab_size=5, num_classes=2)
    lstm = Recurrent(LSTMConfig(hidden=8, forget_bias=1.0), sizes).rnn
    forget = lstm.bias_ih_l0[8:16] + lstm.bias_hh_l0[8:16]
    torch.testing.assert_close(forget, torch.ones(8))
    chrono = Recurrent(LSTMConfig(hidden=8, chrono=50), sizes).rnn
    forget, input_gate = chrono.bias_ih_l0[8:16] + chrono.bias_hh_l0[8:16], chrono.bias_ih_l0[:8] + chrono.bias_hh_l0[:8]
    assert forget.min() >= 0 and forget.max() <= torch.log(torch.tensor(49.0))  # log U(1, T - 1)
    torch.testing.assert_close(input_gate, -forget)


def test_attention_sums_to_one_on_valid_slots_and_is_zero_on_padding():
    model, batch = build("attentive", hidden=6, dim=5), tiny_batch()
    weights = model(batch).attention  # (b, 1, m)
    padding = ~batch.memory_mask[:, None, :]
    assert torch.all(weights[padding] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 1))


def test_registry_names_and_bad_options():
    assert {"lstm", "gru", "rnn", "attentive"} <= set(MODELS)
    assert [model_config(n, {}).cell for n in RECURRENT] == ["LSTM", "GRU", "RNN"]
    assert isinstance(build("gru").rnn, torch.nn.GRU) and isinstance(build("rnn").rnn, torch.nn.RNN)
    with pytest.raises(ValidationError, match="chrono applies to the LSTM"):
        model_config("gru", {"chrono": 20})
    with pytest.raises(ValidationError, match="at least 3 steps"):
        model_config("lstm", {"chrono": 2})
    with pytest.raises(ValidationError, match="hops"):
        model_config("lstm", {"hops": 2})
    with pytest.raises(ValidationError, match="dropout"):
        AttentiveConfig(dropout=1.5)
    with pytest.raises(ValidationError, match="hidden"):
        model_config("attentive", {"hidden": 0})


@pytest.mark.parametrize("name", RECURRENT)
def test_the_cell_comes_with_the_model_name_not_an_option(name):
    assert "cell" not in {field.name for field in dataclasses.fields(MODELS[name][0])}
    with pytest.raises(ValidationError, match="cell"):
        model_config(name, {"cell": "LSTM"})
    with pytest.raises(TypeError, match="takes a"):
        build_model("gru" if name != "gru" else "lstm", model_config(name, {}), tiny_sizes(10))
    assert GRUConfig.cell == "GRU"


# ---- tiny end-to-end runs through the training loop ---------------------------------------------

FAST = {"epochs": 2, "batch_size": 16, "optimizer": "adam", "lr": 0.01, "lr_halve_every": 0}


def train(name: str, options: dict, task: dict, out, training: dict = FAST) -> dict:
    """One run of `name` on `task` (a TaskSpec as a dict) through the training loop, on the CPU."""
    return train_run(resolve(name, None, options, training, task), out, progress=False, device="cpu")


@pytest.mark.parametrize("name", RECURRENT + ["attentive"])
def test_train_on_babi_fixture(name, babi_dir, tmp_path):
    summary = train(name, {"hidden": 8, "dim": 8}, {"name": "babi:1", "data_dir": str(babi_dir), "memory_size": 10}, tmp_path / name)
    assert summary["epochs"] == 2 and 0 <= summary["test_error"]["all"] <= 100
    assert {"config.json", "metrics.jsonl", "summary.json", "checkpoint.pt"} <= {p.name for p in (tmp_path / name).iterdir()}


@pytest.mark.parametrize("name", RECURRENT)
def test_train_on_temporal_order(name, tmp_path):
    summary = train(name, {"hidden": 4}, {"name": "temporal:easy,train=64,valid=16,test=16"}, tmp_path / name)
    assert summary["epochs"] == 2 and 0 <= summary["test_error"]["all"] <= 100


def test_lstm_learns_easy_temporal_order(tmp_path):
    """Can fail for the right reason: an LSTM that cannot carry X/Y to the end stays near 75% error."""
    summary = train("lstm", {"hidden": 8}, {"name": "temporal:easy,train=300,valid=50,test=200"}, tmp_path / "lstm",
                    {"epochs": 6, "optimizer": "adam", "lr": 0.01, "lr_halve_every": 0})
    assert summary["test_error"]["all"] < 10


def test_echo_trains_with_truncated_bptt():
    result = train_echo(EchoConfig(cell="LSTM", hidden=8, echo_step=2, chunk=10, streams=4, steps=400, epochs=6, test_steps=200))
    assert len(result["test_accuracy"]) == 6
    assert result["test_accuracy"][0] < 0.9  # it starts near chance (0.5) ...
    assert result["test_accuracy"][-1] > 0.95  # ... and recalls the delayed bits only if state carries across chunks
