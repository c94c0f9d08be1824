"""The pointer and shift attentions (memnet.models.pointer): shapes, padding, coverage, an alignment step
computed by hand, the preset, and a short run that learns to copy past its training lengths."""

import math

import pytest
import torch
from pydantic import ValidationError

from memnet.batches import DataSizes
from memnet.models.pointer import EPS, Pointer, align_step, consumed, moved, start
from memnet.models.seq2seq import Seq2Seq, Seq2SeqConfig
from memnet.spec import resolve
from memnet.train import train_run
from tests.test_seq2seq import EOS, V, tiny_batch


def build(attention: str) -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(Seq2SeqConfig(dim=5, attention=attention), DataSizes(vocab_size=V, num_classes=V))


@pytest.mark.parametrize("attention", ["pointer", "shift"])
def test_shapes_padding_and_the_end(attention):
    model, batch = build(attention), tiny_batch()
    for training in (True, False):
        out = model.train(training)(batch)
        assert out.logits.shape == (2, 4, V) and out.attention.shape == (2, 4, 3)
        torch.testing.assert_close(out.logits.exp().sum(-1), torch.ones(2, 4), atol=1e-6, rtol=0)  # log-probabilities
        assert torch.all(out.attention[:, :, 2][1] == 0)  # the second source's padding
        # one step per source position, each reading the source; then nothing is open and the step reads nothing
        torch.testing.assert_close(out.attention.sum(-1), torch.tensor([[1.0, 1, 1, 0], [1, 1, 0, 0]]))
        if training:  # teacher forcing (reverse of 3 4 5): the positions of 5, then of 5 and 4, are used up
            assert out.attention[0, 1, 2] == 0 and torch.all(out.attention[0, 2, 1:] == 0)
    model.train()
    model(batch).logits[batch.target != -100].sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_the_start_and_the_shift_by_hand():
    mask = torch.tensor([[True, True, True], [True, False, False]])
    # slots [before, x0, x1, x2, after-of-a-3-long-source]; the second source's "after" slot is the one past x0
    torch.testing.assert_close(start(mask), torch.tensor([[0.5, 0, 0, 0, 0.5], [0.5, 0, 0.5, 0, 0]]))
    last = torch.tensor([[0.0, 0, 1, 0, 0]])  # x1 was output
    shift = torch.tensor([0.2, 0.3, 0.5])  # offsets -1, 0, +1
    torch.testing.assert_close(moved(last, shift), torch.tensor([[0.0, 0.2, 0.3, 0.5, 0]]))


def test_an_alignment_step_by_hand():
    """a_j ∝ open_j exp(c_j + λ log(l_j + ε)), computed here term by term."""
    content = torch.tensor([[1.0, 0.0, 2.0, -1.0]])
    open_ = torch.tensor([[False, True, True, True]])  # x0 already output
    location = torch.tensor([[0.3, 0.5, 0.0, 0.2]])
    got = align_step(content, open_, location, 0.5)
    terms = [0.0] + [math.exp(c + 0.5 * math.log(l + EPS)) for c, l in [(0.0, 0.5), (2.0, 0.0), (-1.0, 0.2)]]
    expected = torch.tensor([[t / sum(terms) for t in terms]])
    torch.testing.assert_close(got, expected)
    # the pointer alone (λ = 0): content over the open positions only
    z = math.exp(0.0) + math.exp(2.0) + math.exp(-1.0)
    torch.testing.assert_close(align_step(content, open_, None, 0.0),
                               torch.tensor([[0.0, 1 / z, math.exp(2.0) / z, math.exp(-1.0) / z]]))
    assert torch.all(align_step(content, torch.zeros_like(open_), location, 0.5) == 0)  # nothing open: reads nothing


def test_two_decoder_steps_by_hand():
    """Source [3, 4, 5], content scores all 0, shift (-1, 0, +1) = (0.1, 0.2, 0.7), λ = 1.
    Step 1: l = 0.5 * 0.7 at x0 (from the slot before, +1), 0.5 * 0.1 at x2 (from the slot after, -1), 0 at x1.
    The true symbol 3 uses up x0; step 2: l = 0.7 at x1 (+1 from x0), 0 at x2, and x0 is closed."""
    pointer = Pointer(V, 2, shift=True)
    with torch.no_grad():
        pointer.content.weight.zero_()
        pointer.shift.copy_(torch.tensor([0.1, 0.2, 0.7]).log())
        pointer.strength.copy_(torch.tensor(math.e - 1).log())  # softplus^-1(1): λ = 1
    source, mask = torch.tensor([[3, 4, 5]]), torch.ones(1, 3, dtype=torch.bool)
    logits, alignment = pointer.train()(source, mask, torch.tensor([[7, 3, 4, 5]]))
    step1 = torch.tensor([0.35 + EPS, EPS, 0.05 + EPS])
    torch.testing.assert_close(alignment[0, 0], step1 / step1.sum())
    step2 = torch.tensor([0.0, 0.7 + EPS, EPS])
    torch.testing.assert_close(alignment[0, 1], step2 / step2.sum())
    torch.testing.assert_close(logits[0, 0, 3].exp(), step1[0] / step1.sum())  # p(3): the weight on x0, which holds 3


def test_duplicates_are_used_one_at_a_time():
    weights = torch.tensor([[0.3, 0.1, 0.6], [0.5, 0.5, 0.0]])
    holds = torch.tensor([[True, True, False], [True, True, False]])
    torch.testing.assert_close(consumed(weights, holds), torch.tensor([[1.0, 0, 0], [1, 0, 0]]))  # most weight; a tie: the first
    assert torch.all(consumed(weights, torch.zeros_like(holds)) == 0)  # no open position holds the symbol: none used


def test_options_of_the_recurrent_parts_are_errors_with_a_pointer():
    with pytest.raises(ValidationError, match="attention=shift has no recurrent encoder or decoder, so hidden does not apply"):
        Seq2SeqConfig(attention="shift", hidden=64)
    with pytest.raises(ValidationError, match="so cell, bidirectional do not apply"):
        Seq2SeqConfig(attention="pointer", cell="LSTM", bidirectional=True)


def test_the_preset_resolves():
    spec = resolve("seq2seq", "seq2seq-length", None, None, {"name": "reverse:train=5-10,test=5-40"})
    assert spec.model.config.attention == "shift"
    assert (spec.train.optimizer, spec.train.lr, spec.train.epochs) == ("adam", 0.01, 5)
    assert resolve("seq2seq", "seq2seq-length", {"attention": "pointer"}, None, {"name": "copy"}).model.config.attention == "pointer"  # flags win


def test_a_short_run_learns_to_copy_past_its_training_lengths(tmp_path):
    """Can fail for the right reason: trained on lengths 2-4 only, it must copy sequences of up to 12 whole."""
    spec = resolve("seq2seq", "seq2seq-length", {"dim": 8}, {"epochs": 2, "batch_size": 32}, {"name": "copy:train=2-4,test=8-12,size=2000,per_length=20"})
    summary = train_run(spec, tmp_path / "run", progress=False, device="cpu")
    assert summary["test_error"]["all"] < 5


def test_the_end_is_the_learned_end_symbol_once_the_source_is_used(tmp_path):
    pointer = Pointer(V, 2, shift=False)
    with torch.no_grad():
        pointer.end.copy_(torch.nn.functional.one_hot(torch.tensor(EOS), V) * 20.0)
    logits, _ = pointer.eval()(torch.tensor([[3, 4]]), torch.ones(1, 2, dtype=torch.bool), torch.full((1, 4), 7))
    assert logits[0, :2].argmax(-1).sort().values.tolist() == [3, 4] and logits[0, 2:].argmax(-1).tolist() == [EOS, EOS]
