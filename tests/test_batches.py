"""Typed batches and the data-sizes contract: selection, trimming, chunks, random noise, and model configs."""

import dataclasses
import math
import re
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

import memnet.models
from memnet.batches import StoryBatch
from memnet.models import MODELS, model_config
from tests.conftest import tiny_babi_batch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def stories(lengths: list[int], slots: int = 50) -> StoryBatch:
    """Stories of `lengths` sentences padded to `slots`, with time as the loader writes it."""
    lengths = torch.tensor(lengths)
    n = len(lengths)
    mask = torch.arange(slots) < lengths[:, None]  # (n, m)
    zeros = torch.zeros(n, dtype=torch.long)
    return StoryBatch(story=mask[..., None].long(), query=torch.ones(n, 1, dtype=torch.long), memory_mask=mask,
                      time=(lengths[:, None] - 1 - torch.arange(slots)).clamp(min=0), supporting=zeros[:, None] - 1,
                      target=zeros, task=zeros)


def reference_noise(time, memory_mask, generator):
    """The noise as memnet drew it before batches were typed (tasks.babi_tensors.add_time_noise), on the CPU."""
    lengths = memory_mask.sum(1)
    most = math.ceil(0.1 * time.shape[1])
    allowed = torch.ceil(0.1 * lengths.float())
    count = (torch.rand(len(time), generator=generator) * (allowed + 1)).long()
    gap = (torch.rand(len(time), most, generator=generator) * (lengths[:, None] + 1)).long()
    real = torch.arange(most) < count[:, None]
    shift = ((gap[:, :, None] <= time[:, None, :]) & real[:, :, None]).sum(1)
    return torch.where(memory_mask, time + shift, time)


# ---- rows, trimming, chunks -----------------------------------------------------------------------

def test_select_keeps_rows_and_drops_memory_slots_no_story_fills():
    batch = tiny_babi_batch([[2, 4], [6, 0]])  # stories of 3 and 2 sentences in 4 slots
    second = batch.select(torch.tensor([1]))
    assert second.story.shape == (1, 2, 3) and second.memory_mask.shape == second.time.shape == (1, 2)
    assert torch.equal(second.story[0], batch.story[1, :2]) and second.target.tolist() == [5]
    both = batch.select(torch.tensor([1, 0]))
    assert both.story.shape == (2, 3, 3) and both.target.tolist() == [5, 3]
    assert batch.rows(torch.tensor([1])).story.shape == (1, 4, 3)  # rows keeps every slot
    assert len(batch) == 2 and batch.story.shape == (2, 4, 3)  # and the batch itself is untouched


def test_chunks_cover_the_split_in_order_with_shapes_kept():
    batch = stories([3, 1, 4, 1, 5], slots=6)
    pieces = list(batch.chunks(2))
    assert [len(piece) for piece in pieces] == [2, 2, 1]
    assert all(piece.story.shape[1] == 6 for piece in pieces)  # outputs of chunks concatenate
    assert torch.equal(torch.cat([piece.time for piece in pieces]), batch.time)


def test_to_moves_every_tensor():
    moved = tiny_babi_batch([[2, 4], [6, 0]]).to("meta")
    assert all(value.device.type == "meta" for value in moved.tensors().values())


# ---- random noise ---------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_random_noise_only_pushes_time_back_and_keeps_order(device):
    lengths = [50, 20, 7, 1]
    batch = stories(lengths).to(device)
    time, mask = batch.time.cpu(), batch.memory_mask.cpu()
    generator = torch.Generator(device=device).manual_seed(0)
    moved = False
    for _ in range(50):
        noisy_batch = batch.with_time_noise(generator, 50)
        assert noisy_batch.time.device == batch.time.device
        noisy = noisy_batch.time.cpu()
        assert torch.equal(noisy[~mask], time[~mask])  # padding untouched
        shift = noisy - time
        assert (shift >= 0).all()
        for row, length in enumerate(lengths):
            valid = noisy[row, :length]
            assert (valid[:-1] > valid[1:]).all()  # still strictly ordered by recency
            assert shift[row].max() <= math.ceil(0.1 * length)
        moved |= bool((shift > 0).any())
    assert moved


def test_random_noise_draws_what_it_drew_before_batches_were_typed():
    batch = stories([50, 20, 7, 1, 13, 2])
    ours, theirs = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for _ in range(20):
        assert torch.equal(batch.with_time_noise(ours, 50).time, reference_noise(batch.time, batch.memory_mask, theirs))


def test_random_noise_does_not_depend_on_the_padding():
    """A story draws the same noise in a batch trimmed to its longest story and in one padded wider
    (a population pads every member to one shape)."""
    batch = stories([7, 3, 5])
    wider = dataclasses.replace(batch, time=torch.nn.functional.pad(batch.time, (0, 9)),
                                memory_mask=torch.nn.functional.pad(batch.memory_mask, (0, 9)),
                                story=torch.nn.functional.pad(batch.story, (0, 0, 0, 9)))
    trimmed = batch.with_time_noise(torch.Generator().manual_seed(5), 50).time
    padded = wider.with_time_noise(torch.Generator().manual_seed(5), 50).time
    assert torch.equal(padded[:, : trimmed.shape[1]], trimmed)


def test_random_noise_never_leaves_the_device(monkeypatch):
    """No .cpu(), .item() or .tolist(): on a GPU each would be a copy and a wait."""
    batch = stories([50, 20, 7, 1])

    def refuse(*args, **kwargs):
        raise AssertionError("random noise moved a tensor to the host")

    for name in ("cpu", "item", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    batch.with_time_noise(torch.Generator().manual_seed(0), 50)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_random_noise_wants_a_generator_on_the_batch_device():
    with pytest.raises(RuntimeError):
        stories([5, 3]).to("cuda").with_time_noise(torch.Generator().manual_seed(0), 50)


# ---- model configs --------------------------------------------------------------------------------

@pytest.mark.parametrize("name, option", [("memn2n", {"hops": 0}), ("memn2n", {"init_std": -0.1}), ("lstm", {"layers": 0}),
                                          ("gru", {"dropout": 1.0}), ("attentive", {"dim": 0}), ("seq2seq", {"hidden": 0})])
def test_a_config_refuses_a_value_out_of_range(name, option):
    with pytest.raises(ValidationError, match=next(iter(option))):
        model_config(name, option)


@pytest.mark.parametrize("name", list(MODELS))
def test_a_config_refuses_an_unknown_option_and_every_size_from_the_data(name):
    for key in ("heads", "vocab_size", "num_classes", "memory_size", "embed_dim"):
        with pytest.raises(ValidationError, match=key):
            model_config(name, {key: 4})


def test_gru_has_no_cell_option():
    with pytest.raises(ValidationError, match="cell"):
        model_config("gru", {"cell": "LSTM"})
    assert model_config("gru", {}).cell == "GRU"
    assert model_config("seq2seq", {"cell": "LSTM"}).cell == "LSTM"  # seq2seq's cell is a real choice


def test_no_model_imports_the_tasks():
    """What a model needs from the data comes through `DataSizes` and the batch, never from tasks/."""
    folder = Path(memnet.models.__file__).parent
    offenders = [f"{path.name}:{number}" for path in sorted(folder.glob("*.py"))
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if re.match(r"\s*(from|import)\s+tasks\b", line)]
    assert not offenders, f"model files import tasks/: {offenders}"


def test_the_sentence_table_holds_each_distinct_sentence_once_and_the_slots_name_theirs():
    batch = tiny_babi_batch([[1, 2], [3, 0]])
    story = torch.tensor([[[4, 5, 0], [6, 0, 0], [4, 5, 0]], [[6, 0, 0], [0, 0, 0], [0, 0, 0]]])  # (n, m, w): a repeat, empty slots
    batch = StoryBatch(story=story, query=batch.query, memory_mask=story[..., 0] != 0, time=torch.zeros(2, 3, dtype=torch.long),
                       supporting=torch.full((2, 1), -1), target=torch.zeros(2, dtype=torch.long), task=torch.zeros(2, dtype=torch.long))
    assert batch.sentences.tolist() == [[0, 0, 0], [4, 5, 0], [6, 0, 0]]  # row 0: the all-padding sentence
    assert torch.equal(batch.sentences[batch.sentence], story)
    picked = batch.select(torch.tensor([1]))  # one story of one sentence: its slot, and a table of only its sentences
    assert picked.story.shape == (1, 1, 3) and picked.sentences.tolist() == [[6, 0, 0]]
    assert torch.equal(picked.sentences[picked.sentence], picked.story)
    assert torch.equal(batch.rows(torch.tensor([1, 0])).sentences, batch.sentences)  # rows keep the whole table
    assert batch.read_by(1).sentences.shape == (0, 3)  # 3 sentences against the 3 slots of a row: no gain, no table
    assert batch.read_by(2).sentences.shape == (3, 3)  # against the 6 slots of two rows: the table


def test_a_step_table_holds_each_members_batch_sentences_padded_to_one_size():
    """Stacked members (p, b, m) with ids into each member's whole table: every slot still reads its words, each
    member's table has only its batch's sentences (each once) then padding, and a batch needing more rows than
    `size` is handed back unchanged with the count it needs."""
    tables = torch.tensor([[[0, 0], [1, 2], [3, 0], [4, 5]], [[0, 0], [6, 0], [7, 8], [0, 0]]])  # (p=2, S=4, w=2)
    sentence = torch.tensor([[[1, 3, 0], [3, 3, 0]], [[2, 2, 2], [1, 0, 0]]])  # (p, b=2, m=3)
    story = tables[torch.arange(2)[:, None, None], sentence]  # (p, b, m, w)
    stacked = StoryBatch(story=story, query=torch.ones(2, 2, 1, dtype=torch.long), memory_mask=sentence != 0,
                         time=torch.zeros(2, 2, 3, dtype=torch.long), supporting=torch.full((2, 2, 1), -1),
                         target=torch.zeros(2, 2, dtype=torch.long), task=torch.zeros(2, 2, dtype=torch.long),
                         sentence=sentence, sentences=tables[:, :0])
    stepped, needed = stacked.with_step_tables(tables, 4)
    assert needed == 3 and stepped.sentences.shape == (2, 4, 2)
    for k in range(2):
        assert torch.equal(stepped.sentences[k][stepped.sentence[k]], story[k])  # each slot reads its own words
        used = {tuple(row) for row in stepped.sentences[k][: int(stepped.sentence[k].max()) + 1].tolist()}
        assert used == {tuple(row) for row in story[k].flatten(0, 1).tolist()}  # only the batch's sentences, once each
    assert stepped.sentences[1, 3].tolist() == [0, 0]  # member 1 needs 3 rows: the 4th is padding
    unchanged, needed = stacked.with_step_tables(tables, 2)
    assert unchanged is stacked and needed == 3


@pytest.mark.parametrize("name", ["memn2n", "gmemn2n", "storyformer"])
def test_a_model_reads_the_same_story_from_the_table_as_from_the_slots(name):
    from memnet.batches import DataSizes
    from memnet.models import build_model

    sizes = DataSizes(vocab_size=12, num_classes=12, memory_size=3, memory_slots=3, sentence_size=4, time_slots=4)
    torch.manual_seed(0)
    model = build_model(name, model_config(name, {}), sizes).eval()
    story = torch.tensor([[[4, 5, 0], [6, 7, 8], [4, 5, 0]], [[6, 7, 8], [9, 0, 0], [0, 0, 0]]])
    batch = StoryBatch(story=story, query=torch.tensor([[2, 3], [3, 0]]), memory_mask=story[..., 0] != 0,
                       time=torch.tensor([[2, 1, 0], [1, 0, 0]]), supporting=torch.full((2, 1), -1),
                       target=torch.tensor([4, 6]), task=torch.zeros(2, dtype=torch.long))
    table, slots = model(batch), model(batch.without_table())
    torch.testing.assert_close(table.logits, slots.logits)
    torch.testing.assert_close(table.attention, slots.attention)
