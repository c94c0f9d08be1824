"""MemN2N against hand computations, and its paper options one by one."""

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from memnet.addressing import address
from memnet.batches import DataSizes
from memnet.models import model_config
from memnet.models.memn2n import MemN2N, MemN2NConfig, position_encoding, release_position_encoding
from tests.conftest import tiny_babi_batch, tiny_sizes

SIZES = tiny_sizes(8)  # vocabulary of 8; memory of 4 sentences; no empty memories unless a test gives memory_slots


def tiny_batch():
    """The shared tiny bAbI batch (vocabulary of 8)."""
    return tiny_babi_batch([[2, 4], [6, 0]])


@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
@pytest.mark.parametrize("encoding", ["bow", "position", "position-release"])
def test_attention_sums_to_one_on_valid_slots_and_is_zero_on_padding(tying, encoding):
    model = MemN2N(MemN2NConfig(hops=3, dim=6, tying=tying, encoding=encoding), SIZES)
    batch = tiny_batch()
    out = model(batch)
    assert out.logits.shape == (2, 8) and out.attention.shape == (2, 3, 4)
    padding = ~batch.memory_mask[:, None, :].expand_as(out.attention)
    assert torch.all(out.attention[padding] == 0)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(2, 3))


@pytest.mark.parametrize("empty_memories", [False, True])
def test_one_hop_equals_a_hand_computation(empty_memories):
    torch.manual_seed(0)
    memory_slots = 6 if empty_memories else 0
    model = MemN2N(MemN2NConfig(hops=1, dim=5, encoding="bow", temporal=True, empty_memories=empty_memories),
                   tiny_sizes(8, memory_slots=6))
    batch = tiny_batch()
    A, C = model.words[0].weight.detach().numpy(), model.words[1].weight.detach().numpy()
    TA, TC = model.times[0].weight.detach().numpy(), model.times[1].weight.detach().numpy()
    logits = model(batch).logits.detach().numpy()
    for i in range(2):
        u = sum(A[word] for word in batch.query[i].tolist())  # B = A^1
        keys, values = [], []
        for slot, sentence in enumerate(batch.story[i].tolist()):
            if not any(sentence):
                continue
            t = batch.time[i, slot].item()
            keys.append(sum(A[word] for word in sentence) + TA[t])
            values.append(sum(C[word] for word in sentence) + TC[t])
        empty = max(0, memory_slots - len(keys)) if memory_slots else 0  # unfilled slots: zero key and value
        keys += [np.zeros(5)] * empty
        values += [np.zeros(5)] * empty
        scores = np.array([u @ key for key in keys])
        p = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
        o = sum(weight * value for weight, value in zip(p, values))
        expected = (o + u) @ C.T  # W^T = C^K
        np.testing.assert_allclose(logits[i, 1:], expected[1:], rtol=1e-5, atol=1e-6)
        assert logits[i, 0] == -np.inf  # PAD is never an answer


def test_empty_memories_take_weight_from_the_sentences_and_read_nothing():
    torch.manual_seed(0)
    batch = tiny_batch()
    sentences = batch.memory_mask.sum(1)  # (2,)
    capacity = tiny_sizes(8, memory_slots=int(sentences.max()) + 3)
    masked = MemN2N(MemN2NConfig(hops=2, dim=6, empty_memories=False), capacity)
    slotted = MemN2N(MemN2NConfig(hops=2, dim=6), capacity)
    slotted.load_state_dict(masked.state_dict())
    attention = slotted(batch).attention  # (2, hops, 4)
    assert torch.all(attention[~batch.memory_mask[:, None, :].expand_as(attention)] == 0)  # padding: still nothing
    assert torch.all(attention.sum(-1) < 1)  # the rest went to the empty slots
    torch.testing.assert_close(masked(batch).attention.sum(-1), torch.ones(2, 2))  # empty_memories=False: none
    # a story that fills every slot has no empty memory: the same read as the masked model
    full = MemN2N(MemN2NConfig(hops=2, dim=6), tiny_sizes(8, memory_slots=int(sentences.max())))
    full.load_state_dict(masked.state_dict())
    longest = sentences == sentences.max()
    torch.testing.assert_close(full(batch).logits[longest], masked(batch).logits[longest])


def test_adjacent_tying_shares_matrices_between_hops():
    model = MemN2N(MemN2NConfig(hops=3, dim=4, tying="adjacent"), SIZES)
    for hop in range(2):
        assert model.hop_tables(hop + 1)[0] is model.hop_tables(hop)[1]  # A^(k+1) = C^k
        assert model.hop_tables(hop + 1)[2] is model.hop_tables(hop)[3]  # T_A^(k+1) = T_C^k
    assert model.question_table() is model.hop_tables(0)[0]  # B = A^1
    # W^T = C^K: a change to C^K's row of a word changes that word's logit
    out = model(tiny_batch()).logits
    with torch.no_grad():
        model.hop_tables(2)[1].weight[3] += 1.0
    changed = (model(tiny_batch()).logits - out).abs() > 1e-6
    assert changed[:, 3].all()
    assert len(list(model.parameters())) == 2 * (3 + 1)  # K + 1 word tables and K + 1 time tables


def test_layerwise_tying_shares_one_A_and_C_and_adds_H():
    model = MemN2N(MemN2NConfig(hops=3, dim=4, tying="layerwise", relu=True), SIZES)
    tables = [model.hop_tables(hop) for hop in range(3)]
    assert all(t[0] is tables[0][0] and t[1] is tables[0][1] for t in tables)
    assert model.question_table() is not tables[0][0]
    assert model.H.weight.shape == (4, 4)
    model(tiny_batch()).logits.sum().backward()
    assert model.H.weight.grad.abs().sum() > 0


def test_position_encoding_matches_the_formula():
    words = torch.tensor([[5, 6, 7, 0, 0]])  # J = 3 real words, 2 padding
    d = 4
    l = position_encoding(words, d)[0]  # (w, d)
    J = 3
    for j in range(1, J + 1):
        for k in range(1, d + 1):
            assert l[j - 1, k - 1].item() == pytest.approx((1 - j / J) - (k / d) * (1 - 2 * j / J))


def test_release_position_encoding_matches_the_official_formula():
    words = torch.tensor([[5, 6, 0], [7, 8, 9]])  # the weights depend on place only, not on sentence length
    d, J = 4, 12
    l = release_position_encoding(words, d, J)  # (w, d)
    for j in range(1, 4):
        for k in range(1, d + 1):
            assert l[j - 1, k - 1].item() == pytest.approx(1 + 4 * (k - (d + 1) / 2) * (j - (J + 1) / 2) / (d * J))


def test_linear_start_removes_the_softmax():
    query, keys = torch.randn(2, 1, 3), torch.randn(2, 4, 3)
    values = torch.randn(2, 4, 5)
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    linear = address(query, keys, values, mask, softmax=False)
    scores = torch.einsum("bqd,bmd->bqm", query, keys) * mask[:, None]
    torch.testing.assert_close(linear.weights, scores)
    torch.testing.assert_close(linear.value, torch.einsum("bqm,bme->bqe", scores, values))
    model = MemN2N(MemN2NConfig(dim=4), SIZES)
    with_softmax = model(tiny_batch()).attention
    model.use_softmax = False
    without = model(tiny_batch()).attention
    assert not torch.allclose(with_softmax, without)
    assert not torch.allclose(without.sum(-1), torch.ones(2, 3))


def test_padding_word_has_zero_vector_and_no_gradient():
    model = MemN2N(MemN2NConfig(dim=4), SIZES)
    assert all(torch.all(table.weight[0] == 0) for table in model.words)
    model(tiny_batch()).logits.sum().backward()
    assert all(torch.all(table.weight.grad[0] == 0) for table in model.words)


@pytest.mark.parametrize("bad, message", [
    ({"encoding": "bag"}, "'bow', 'position' or 'position-release'"), ({"tying": "none"}, "'adjacent' or 'layerwise'"),
    ({"relu": True}, "relu=True needs tying='layerwise'"), ({"hops": 0}, "greater than or equal to 1"),
    ({"dim": 0}, "greater than or equal to 1"), ({"init_std": 0}, "greater than 0"),
])
def test_bad_options_say_what_is_valid(bad, message):
    with pytest.raises(ValidationError, match=message):
        MemN2NConfig(**bad)


@pytest.mark.parametrize("size", ["vocab_size", "memory_size", "memory_slots", "sentence_size", "time_slots"])
def test_no_option_can_set_a_size_the_data_gives(size):
    with pytest.raises(ValidationError, match=size):
        model_config("memn2n", {size: 5})
    assert not model_config("memn2n", {"empty_memories": False}).empty_memories  # what -o memory_slots=0 did


@pytest.mark.parametrize("encoding", ["bow", "position", "position-release"])
def test_split_word_weights_give_the_papers_weighted_sum_of_word_vectors(encoding):
    """MemN2N's weights, built as alpha_j + slope_k * beta_j, are the paper's (and the release's) l_kj (sec. 4.1)."""
    torch.manual_seed(0)
    sizes = DataSizes(vocab_size=9, num_classes=9, memory_size=50, memory_slots=3, sentence_size=5, time_slots=55)
    model = MemN2N(MemN2NConfig(dim=6, encoding=encoding), sizes)
    words = torch.tensor([[[2, 3, 4, 0], [5, 5, 0, 0], [0, 0, 0, 0]]])  # (b, m, w); a repeated word, an empty sentence
    place = {"bow": torch.ones(4, 6), "position": position_encoding(words, 6),
             "position-release": release_position_encoding(words, 6, 5)}[encoding]
    tables = [model.words[1], model.words[2]]  # read as one, each in its own slice
    sentences = model.embed(tables, model.bags(words))  # (b, m, 2, d)
    for k, table in enumerate(tables):
        assert torch.allclose(sentences[:, :, k], (table(words) * place).sum(-2), atol=1e-6)
