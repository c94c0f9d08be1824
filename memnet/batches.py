"""Typed batches: what a task hands the training loop, and the sizes a model takes from the data.

Each task family has one batch type. Every batch holds `target` (what to predict; IGNORE_INDEX
where there is nothing to predict) and `task` (n,) (the bAbI task number; one constant for
one-task data), and every batch answers the same calls, so the training loop never asks which
family it holds:

    len(batch)             examples n
    batch.select(index)    a training batch of those rows (a StoryBatch also drops unused memory slots)
    batch.rows(index)      those rows with every other dimension kept (outputs of several concatenate)
    batch.chunks(size)     the rows in order, `size` at a time, for evaluation
    batch.to(device)

A model reads the fields of its own family (`batch.story`, `batch.source`, ...).

Shape legend: n examples, m memory slots, w words per sentence, q words per question,
s supporting facts (stories) or source positions (seq2seq), L sequence length, t decoder steps.

    StoryBatch     story (n, m, w)  query (n, q)  memory_mask (n, m)  time (n, m)  supporting (n, s)  target (n,)  task (n,)
                   sentence (n, m) ids into its sentence table sentences (S, w), one row per distinct sentence
    SequenceBatch  input (n, L)  lengths (n,)  mask (n, L)  t1 (n,)  t2 (n,)  target (n,)  task (n,)
    Seq2SeqBatch   source (n, s)  source_mask (n, s)  decoder_input (n, t)  length (n,)  target (n, t)  task (n,)
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar, Iterator, TypeVar

import torch
from einops import rearrange

IGNORE_INDEX = -100  # a target with nothing to predict (padding in sequences); cross-entropy's default ignore_index
NOISE_FRACTION = 0.1  # random noise: up to 10% empty memories (Sukhbaatar et al. 2015, sec. 4.2)
B = TypeVar("B", bound="Batch")  # a method of Batch returns the caller's own batch type


def time_slots(memory_size: int) -> int:
    """Rows of a temporal-encoding table: recency indices 0..memory_size-1 plus room for the noise's gaps."""
    return memory_size + math.ceil(NOISE_FRACTION * memory_size)


@dataclass(frozen=True)
class DataSizes:
    """What a model takes from the data; derived when a task is loaded, never set by an option."""

    vocab_size: int  # input words (and for bAbI the answer classes), PAD = 0 included
    num_classes: int  # answer classes (bAbI: the vocabulary) or sequence classes
    memory_size: int = 0  # stories: sentences kept per story (the task's --memory-size); 0 for other data
    memory_slots: int = 0  # stories: the longest training story, at most memory_size (the release's memory capacity)
    sentence_size: int = 0  # stories: the longest training sentence or question + 1 (the release's J)
    time_slots: int = 0  # stories: rows of temporal tables, memory_size plus room for random-noise gaps


@dataclass(frozen=True, eq=False)  # eq=False: == on tensors is elementwise, not a truth value
class Batch:
    """What every batch type shares. Subclasses declare only tensor fields, each with n rows first, except
    those named in SHARED: tables the rows index into, which every selection of rows keeps whole."""

    SHARED: ClassVar[frozenset[str]] = frozenset()

    def __len__(self) -> int:
        return len(self.target)

    def rows(self: B, index) -> B:
        """Rows `index` (a slice, or a tensor of row numbers on any device), every other dimension kept."""
        if isinstance(index, torch.Tensor):
            index = index.to(self.target.device)
        return dataclasses.replace(self, **{name: value[index] for name, value in self.tensors().items()})

    def select(self: B, index) -> B:
        """A training batch of rows `index`; a family may also drop what the rows leave unused."""
        return self.rows(index)

    def chunks(self: B, size: int) -> Iterator[B]:
        """The rows in order, `size` at a time (evaluation over a whole split)."""
        for start in range(0, len(self), size):
            yield self.rows(slice(start, start + size))

    def to(self: B, device) -> B:
        return dataclasses.replace(self, **{field.name: getattr(self, field.name).to(device) for field in dataclasses.fields(self)})

    def tensors(self) -> dict[str, torch.Tensor]:
        """The fields with n rows first (not the shared tables)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self) if field.name not in self.SHARED}

    def read_by(self: B, rows: int) -> B:
        """The batch as calls that read `rows` rows at a time read it fastest (a population's compiled step and
        evaluation, whose shapes are fixed). A family with a table drops it where it would cost more than it saves."""
        return self

    def shared(self) -> dict[str, torch.Tensor]:
        """The tables the rows index into (SHARED)."""
        return {name: getattr(self, name) for name in sorted(self.SHARED)}


@dataclass(frozen=True, eq=False)
class StoryBatch(Batch):
    """bAbI questions (tasks.babi_tensors): the `memory_size` most recent statements of each story,
    oldest first, padding after them.

    The sentence table: a story's slots name their sentences (`sentence`, ids into `sentences`), so a
    model that encodes sentences encodes each distinct one once (a 50-slot bAbI 1k task has 262-364
    distinct training sentences against 1,600 slots in a batch of 32) and gathers the slots from them.
    Made from `story` when not given; row 0 is always the all-padding sentence, which empty slots name.
    """

    story: torch.Tensor  # (n, m, w) word ids, 0 = padding
    query: torch.Tensor  # (n, q) word ids
    memory_mask: torch.Tensor  # (n, m) True on slots that hold a sentence
    time: torch.Tensor  # (n, m) recency: 0 = the most recent sentence, 1 the one before, ...
    supporting: torch.Tensor  # (n, s) memory slots of the supporting facts, -1 = none (or fell out of memory)
    target: torch.Tensor  # (n,) answer id
    task: torch.Tensor  # (n,) bAbI task number
    sentence: torch.Tensor | None = None  # (n, m) each slot's row of `sentences`
    sentences: torch.Tensor | None = None  # (S, w) word ids of each distinct sentence; (0, w): no table, read `story`

    SHARED: ClassVar[frozenset[str]] = frozenset({"sentences"})

    def __post_init__(self):
        if self.sentences is None:
            slots = rearrange(self.story, "n m w -> (n m) w")
            empty = slots.new_zeros(1, slots.shape[1])  # sorts first: the table's row 0, whether or not a slot is empty
            table, ids = torch.unique(torch.cat([empty, slots]), dim=0, return_inverse=True)
            object.__setattr__(self, "sentences", table)  # (S, w)
            object.__setattr__(self, "sentence", ids[1:].view(self.story.shape[:2]))  # (n, m)

    def select(self, index) -> "StoryBatch":
        """Rows `index`, without the memory slots that none of them fills (a split is padded to its longest story),
        and with a sentence table of only their sentences."""
        picked = self.rows(index)
        used = max(1, int(picked.memory_mask.sum(1).max()))
        picked = dataclasses.replace(picked, story=picked.story[:, :used], memory_mask=picked.memory_mask[:, :used],
                                     time=picked.time[:, :used], sentence=picked.sentence[:, :used])
        if not len(self.sentences):
            return picked
        rows, ids = torch.unique(picked.sentence, return_inverse=True)  # (u,), (b, used)
        return dataclasses.replace(picked, sentence=ids, sentences=self.sentences[rows])

    def without_table(self) -> "StoryBatch":
        """The same rows with an empty sentence table: a model reads each slot's words (`story`) instead."""
        return dataclasses.replace(self, sentences=self.sentences[..., :0, :])

    def read_by(self, rows: int) -> "StoryBatch":
        """Without the table where it has as many sentences as `rows` rows have slots (joint bAbI: 3,039 distinct
        training sentences against 1,600 slots in a batch of 32): encoding the table would then cost more than
        encoding every slot. `story` (..., n, m, w) may carry a leading member axis."""
        return self if self.sentences.shape[-2] < rows * self.story.shape[-2] else self.without_table()

    def with_step_tables(self, tables: torch.Tensor, size: int) -> tuple["StoryBatch", int]:
        """Stacked members' batches (p, b, m, ...) whose `sentence` ids point into each member's whole table
        `tables` (p, S, w), with a table of only the batch's own sentences instead, `size` rows a member
        (p, size, w; rows past a member's sentences are padding), and the most sentences one member's batch
        needs (where it exceeds `size` the batch is returned unchanged, for a larger `size`).

        A population's compiled step has fixed shapes, so where the whole table is too large to pay
        (`read_by`), the table of each step's batch is built here, out of the step, padded to `size`
        (joint bAbI: 226 distinct sentences on average in a batch of 32, at most 323 in 200 batches, against
        1,600 slots). A lone run's `select` builds the same table, unpadded."""
        p, S = self.sentence.shape[0], tables.shape[1]
        member = torch.arange(p, device=self.sentence.device).view(p, 1, 1)
        keys, inverse = torch.unique(member * S + self.sentence, return_inverse=True)  # (u,), (p, b, m): sorted by member
        owner, row = keys // S, keys % S  # (u,) each
        counts = torch.bincount(owner, minlength=p)  # (p,)
        needed = int(counts.max())
        if needed > size:
            return self, needed
        first = torch.cumsum(counts, 0) - counts  # (p,) where each member's keys start
        local = torch.arange(len(keys), device=keys.device) - first[owner]  # (u,) each key's row in its member's table
        table = tables.new_zeros(p, size, tables.shape[2])  # (p, size, w)
        table[owner, local] = tables[owner, row]
        return dataclasses.replace(self, sentence=local[inverse], sentences=table), needed

    def sequence(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The story as one stream: the words of the valid slots in order, then the question's, padding removed.

        Returns tokens (n, L), 0 after each row's end, and lengths (n,). For readers without memory (the LSTM).
        """
        story = self.story.masked_fill(~self.memory_mask[..., None], 0)  # (n, m, w) empty slots read nothing
        tokens = torch.cat([rearrange(story, "n m w -> n (m w)"), self.query], 1)  # (n, m*w + q)
        keep = tokens != 0  # (n, m*w + q)
        order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # real words first, in reading order
        lengths = keep.sum(1)  # (n,)
        return tokens.gather(1, order)[:, : max(1, int(lengths.max()))], lengths  # (n, L), (n,)

    def with_time_noise(self, generator: torch.Generator, memory_size: int, rule: str = "gaps") -> "StoryBatch":
        """A copy with random noise in `time`: up to 10% empty memories (Sukhbaatar et al. 2015, sec. 4.2; training only).

        Each story of n sentences draws k empty memories, 0 <= k <= ceil(10% of n). Rule "gaps" drops
        each into a random gap of its timeline, so a sentence's recency grows by the empties more
        recent than it (`noisy_time`); rule "release" is the official release's (`release_noisy_time`).
        Only `time` changes, and the sentences keep their order. `generator` lives on the batch's
        device, so nothing leaves it; how many numbers it draws depends on the rows and the memory's
        size only, not on the batch's padding, so a run draws the same noise alone or in a
        population (memnet.population).
        """
        count, draws = draw_time_noise(generator, len(self), memory_size, self.time.device, rule)
        return dataclasses.replace(self, time=noised_time(self.time, self.memory_mask, count, draws, rule))


def noise_draws(memory_size: int, rule: str = "gaps") -> int:
    """Uniform draws per story besides its count, e: enough for the longest story of `memory_size`.

    "gaps": one per empty memory, ceil(10% of memory_size); "release": one per place of the
    permutation of n + k places, memory_size + ceil(10% of memory_size).
    """
    most = math.ceil(NOISE_FRACTION * memory_size)
    return most if rule == "gaps" else memory_size + most


def draw_time_noise(generator: torch.Generator, rows: int, memory_size: int, device,
                    rule: str = "gaps") -> tuple[torch.Tensor, torch.Tensor]:
    """The uniform draws behind a batch's random noise: (rows,) for the count, (rows, e) for the places."""
    return (torch.rand(rows, generator=generator, device=device),
            torch.rand(rows, noise_draws(memory_size, rule), generator=generator, device=device))


def noised_time(time: torch.Tensor, memory_mask: torch.Tensor, count: torch.Tensor, draws: torch.Tensor, rule: str) -> torch.Tensor:
    """`time` (..., m) with the noise of `rule` ("gaps" or "release") that the draws (...,) and (..., e) give."""
    return (noisy_time if rule == "gaps" else release_noisy_time)(time, memory_mask, count, draws)


def noisy_time(time: torch.Tensor, memory_mask: torch.Tensor, count: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
    """`time` (..., m) with the empty memories that the draws count (...,) and gap (..., e) insert."""
    lengths = memory_mask.sum(-1)  # (...,)
    allowed = torch.ceil(NOISE_FRACTION * lengths.float())  # (...,)
    k = (count * (allowed + 1)).long()  # (...,) empty memories per story
    gaps = (gap * (lengths[..., None] + 1)).long()  # (..., e) gap g: before recency g
    real = torch.arange(gap.shape[-1], device=gap.device) < k[..., None]  # (..., e) the first k draws are used
    shift = ((gaps[..., :, None] <= time[..., None, :]) & real[..., :, None]).sum(-2)  # (..., m) empties more recent than each slot
    return torch.where(memory_mask, time + shift, time)


def release_noisy_time(time: torch.Tensor, memory_mask: torch.Tensor, count: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """The official release's random noise (MemN2N-babi-matlab, train.m) on `time` (..., m).

    A story of n sentences draws k ~ U{0..ceil(10% of n)} blanks; its times are the first n values of
    a random permutation of 1..n + k, sorted in descending order (the oldest sentence gets the
    largest), here minus 1 (our recency starts at 0). The first n values of a permutation are the
    places of the n smallest of n + k uniform draws, so `draws` (..., e), e >= n + k, give them.
    The release then clamps times to its time table's size; the model does that (MemN2N `time_rows`).
    """
    lengths = memory_mask.sum(-1)  # (...,) n
    blanks = (count * (torch.ceil(NOISE_FRACTION * lengths.float()) + 1)).long()  # (...,) k
    places = torch.arange(draws.shape[-1], device=draws.device)  # (e,)
    keys = torch.where(places < (lengths + blanks)[..., None], draws, 2.0)  # (..., e) places past n + k sort last
    chosen = keys.argsort(dim=-1, stable=True).argsort(dim=-1, stable=True) < lengths[..., None]  # (..., e) the n smallest: the permutation's first n
    ascending = torch.argsort((~chosen).to(torch.int8), dim=-1, stable=True)  # (..., e) chosen places first, ascending
    noisy = ascending.gather(-1, time.clamp(max=draws.shape[-1] - 1))  # (..., m) recency r gets the r-th smallest
    return torch.where(memory_mask, noisy, time)


@dataclass(frozen=True, eq=False)
class SequenceBatch(Batch):
    """Sequences to classify (tasks.temporal_order): symbol ids padded with 0 after each end."""

    input: torch.Tensor  # (n, L) symbol ids, 0 = padding
    lengths: torch.Tensor  # (n,) real symbols per row
    mask: torch.Tensor  # (n, L) True on real symbols
    t1: torch.Tensor  # (n,) where the first relevant symbol is (temporal order)
    t2: torch.Tensor  # (n,) where the second one is
    target: torch.Tensor  # (n,) class
    task: torch.Tensor  # (n,) 0: one task

    def sequence(self) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (n, L) and lengths (n,), as `StoryBatch.sequence` gives them."""
        return self.input, self.lengths


@dataclass(frozen=True, eq=False)
class Seq2SeqBatch(Batch):
    """Source and target sequences (tasks.seq2seq_tasks); the decoder reads BOS, then the target."""

    source: torch.Tensor  # (n, s) symbol ids, 0 = padding
    source_mask: torch.Tensor  # (n, s) True on real symbols
    decoder_input: torch.Tensor  # (n, t) BOS, then the target (teacher forcing)
    length: torch.Tensor  # (n,) source length, for accuracy by length
    target: torch.Tensor  # (n, t) the target, then EOS; IGNORE_INDEX on padding
    task: torch.Tensor  # (n,) 0: one task


for _batch_type in (StoryBatch, SequenceBatch, Seq2SeqBatch):  # vmap and torch.compile see through them (memnet.population)
    torch.utils._pytree.register_dataclass(_batch_type)
