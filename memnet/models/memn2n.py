"""End-To-End Memory Networks (Sukhbaatar, Szlam, Weston, Fergus; NIPS 2015).

Shape legend: b batch, m memory slots (sentences), w words per sentence, q words per question,
d embedding size, V vocabulary, T time slots, k hops.

One hop (sec. 2.1): memory keys m_i = sum_j A x_ij + T_A(i) and values c_i = sum_j C x_ij + T_C(i);
p = softmax(u . m_i) over the story's sentences and the memory's empty slots, o = sum_i p_i c_i,
and u <- u + o (or H u + o).
The answer is softmax(W (o^K + u^K)).

Paper options (sec. 2.2, 4.1, 4.2): bag-of-words or position encoding of sentences, temporal
encoding, adjacent or layer-wise tying. Linear start (removing the softmax) is `use_softmax`,
set by the training loop; random noise lives in the data (`memnet.batches.StoryBatch.with_time_noise`).
Sizes come from the data (`DataSizes`): the vocabulary, the temporal tables' rows (`time_slots`),
the memory's capacity (`memory_slots`) and the release's sentence width J (`sentence_size`).

The official release (MemN2N-babi-matlab in facebook/MemNN) differs from the text in ways that
are switches here, each off by default (`memnet.presets` "release" turns them all on): its time
encoding (`time_words`, `time_scale`, `time_rows`), its answer softmax (`answers`) and its cut of
longer test stories (`recent_only`). With time words a table holds V word rows, then T time rows:

    A, C (V + T, d): rows 0..V-1 words (0 = nil/padding, zero), rows V..V+T-1 the time words
"""

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from torch import nn

from memnet.addressing import address
from memnet.batches import DataSizes, StoryBatch
from memnet.models.output import Output


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class MemN2NConfig:
    hops: Annotated[int, Field(ge=1)] = 3  # memory reads per question (the paper's K)
    dim: Annotated[int, Field(ge=1)] = 20  # embedding size d: 20 per task, 50 joint (sec. 4.2)
    encoding: Literal["bow", "position", "position-release"] = "position"  # "bow" sums word vectors; "position"
    # weights them by place (sec. 4.1); "position-release": the official release's weights, near 1 with a
    # gentle slope (see release_position_encoding), over the data's sentence width J (sizes.sentence_size)
    temporal: bool = True  # add learned vectors by recency to keys and values (sec. 4.1)
    tying: Literal["adjacent", "layerwise"] = "adjacent"  # "adjacent": A^(k+1) = C^k, B = A^1, W^T = C^K;
    # "layerwise": shared A, C and a map H
    relu: bool = False  # ReLU on the controller state between hops (layerwise only; the 10k table)
    empty_memories: bool = True  # the release's memory of sizes.memory_slots slots: those a story leaves
    # unused are empty memories in every hop's softmax (see `forward`); False: only the story's sentences
    time_words: bool = False  # the release's time encoding: a memory's recency is a "time word" whose vectors are T
    # extra rows of the word tables A and C (so tied and clipped with them, and scored by W = C^K with answers="table");
    # False: tables T_A, T_C of their own (sec. 4.1)
    time_scale: bool = False  # weight the time vectors by the position weights' column J, as the release reads a time
    # word as the word at place J (needs encoding position-release); False: added as they are
    time_rows: Literal["memory-size", "memory-slots"] = "memory-size"  # T, the recencies with a vector: "memory-size":
    # sizes.time_slots (the task's memory size plus room for the noise's gaps); "memory-slots": sizes.memory_slots, the
    # release's sz = min(50, longest training story). A larger recency (random noise) reads the last row
    answers: Literal["vocabulary", "table"] = "vocabulary"  # the answer softmax's classes: "vocabulary": the words,
    # padding left out; "table": every row of W as in the release: the time words too, and the nil word at logit 0
    # (the release zeroes its column after every update, so no gradient reaches it)
    recent_only: bool = False  # a story longer than sizes.memory_slots keeps its memory_slots most recent sentences, as
    # the release cuts test stories to its memory's sz; False: up to the task's memory_size (--memory-size)
    init_std: Annotated[float, Field(gt=0)] = 0.1  # weights from N(0, 0.1) (sec. 4.2)

    def __post_init__(self):
        if self.relu and self.tying != "layerwise":
            raise ValueError(f"relu applies to layer-wise tying only: relu=True needs tying='layerwise', got tying={self.tying!r}")
        if self.time_scale and self.encoding != "position-release":
            raise ValueError(f"time_scale weights time vectors by the release's position weights: time_scale=True needs "
                             f"encoding='position-release', got encoding={self.encoding!r}")
        if (self.time_words or self.time_scale) and not self.temporal:
            raise ValueError("time_words and time_scale shape the temporal encoding: they need temporal=True")


def position_encoding(words: torch.Tensor, dim: int) -> torch.Tensor:
    """l_kj = (1 - j/J) - (k/d)(1 - 2j/J) for word j of J in a sentence (sec. 4.1): (..., w) -> (..., w, d).

    J counts the sentence's own words, not its padding (the paper's formula).
    """
    length = (words != 0).sum(-1, keepdim=True).clamp(min=1).unsqueeze(-1).float()  # (..., 1, 1)
    j = torch.arange(1, words.shape[-1] + 1, device=words.device).float()[:, None]  # (w, 1)
    k = torch.arange(1, dim + 1, device=words.device).float()  # (d,)
    return (1 - j / length) - (k / dim) * (1 - 2 * j / length)  # (..., w, d)


def release_position_encoding(words: torch.Tensor, dim: int, width: int) -> torch.Tensor:
    """The official MATLAB release's weights: 1 + 4 (k - (d+1)/2)(j - (J+1)/2) / (d J), J a fixed width.

    Unlike the paper's formula they stay near 1 (a bag of words with a slope by place), and a word
    at place j gets the same weights in every sentence, so a name matches itself across sentence
    forms ("lily is a swan", "lily is white"), which task 16 needs. (..., w) -> (w, d), broadcasting.
    """
    j = torch.arange(1, words.shape[-1] + 1, device=words.device).float()[:, None]  # (w, 1)
    k = torch.arange(1, dim + 1, device=words.device).float()  # (d,)
    return 1 + 4 * (k - (dim + 1) / 2) * (j - (width + 1) / 2) / (dim * width)  # (w, d)


def word_weights(words: torch.Tensor, encoding: str, width) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The encodings' weights as l_kj = alpha_j + slope_k * beta_j: alpha (..., w) and beta (..., w), or None.

    position (sec. 4.1): (1 - j/J) - (k/d)(1 - 2j/J): alpha = 1 - j/J, beta = 1 - 2j/J, slope = -k/d,
    J the sentence's own length; position-fixed: the same with J the data's fixed width (the query-reduction
    network's PositionEncoder, github seominjoon/qrn). position-release: 1 + 4 (k - (d+1)/2)(j - (J+1)/2) / (d J):
    alpha = 1, beta = (j - (J+1)/2) / J, slope = 4 (k - (d+1)/2) / d, J the data's fixed width.
    bow: alpha = 1. Tested against `position_encoding` and `release_position_encoding`.
    """
    j = torch.arange(1, words.shape[-1] + 1, device=words.device).float()  # (w,)
    ones = torch.ones(words.shape, device=words.device)
    if encoding == "position":
        length = (words != 0).sum(-1, keepdim=True).clamp(min=1).float()  # (..., 1)
        return 1 - j / length, 1 - 2 * j / length
    if encoding == "position-release":
        return ones, ones * (j - (width + 1) / 2) / width
    if encoding == "position-fixed":
        return ones * (1 - j / width), ones * (1 - 2 * j / width)
    return ones, None


def weighted_bag(words: torch.Tensor, table: nn.Embedding, encoding: str, width) -> torch.Tensor:
    """Sentence vectors (..., d) of word ids (..., w): each word's vector in `table` weighted by its place
    (`word_weights`), summed; padding adds nothing. For models with one word table (the storyformer, QRN)."""
    alpha, beta = word_weights(words, encoding, width)  # (..., w) each
    weights = alpha[..., None]  # (..., w, 1)
    if beta is not None:
        weights = weights + beta[..., None] * slope(encoding, table.embedding_dim, words.device)  # (..., w, d)
    return (table(words) * weights * (words != 0)[..., None]).sum(-2)  # (..., d)


def slope(encoding: str, dim: int, device) -> torch.Tensor:
    """slope_k of `word_weights`: (d,)."""
    k = torch.arange(1, dim + 1, device=device).float()
    return -k / dim if encoding in ("position", "position-fixed") else 4 * (k - (dim + 1) / 2) / dim


class MemN2N(nn.Module):
    def __init__(self, config: MemN2NConfig, sizes: DataSizes):
        super().__init__()
        if config.temporal and sizes.time_slots < 1:
            raise ValueError("temporal encoding needs story data: sizes.time_slots is 0")
        if config.encoding == "position-release" and sizes.sentence_size < 1:
            raise ValueError("encoding='position-release' needs the data's sentence width: sizes.sentence_size is 0")
        if (config.temporal and config.time_rows == "memory-slots" or config.recent_only) and sizes.memory_slots < 1:
            raise ValueError("time_rows='memory-slots' and recent_only need the data's memory capacity: sizes.memory_slots is 0")
        self.config, self.sizes = config, sizes
        V, d, K = sizes.vocab_size, config.dim, config.hops
        T = sizes.memory_slots if config.time_rows == "memory-slots" else max(1, sizes.time_slots)
        rows = V + T if config.time_words else V  # rows of a word table: the words, then any time words
        self.output_classes = rows if config.answers == "table" else V  # logits past these are -inf (memnet.population)
        # Numbers that may differ between the members of a population (memnet.population) are buffers,
        # so each member carries its own: whether the softmax is on (off during linear start), the
        # memory's capacity (0: no empty memories), the release's sentence width J, the vocabulary
        # (where time words start), the time vectors' count T and the sentences a story keeps (recent_only).
        self.register_buffer("softmax_on", torch.tensor(True), persistent=False)
        self.register_buffer("memory_slots", torch.tensor(sizes.memory_slots if config.empty_memories else 0), persistent=False)
        self.register_buffer("sentence_width", torch.tensor(float(sizes.sentence_size)), persistent=False)
        self.register_buffer("vocab_rows", torch.tensor(V), persistent=False)
        self.register_buffer("time_rows", torch.tensor(T), persistent=False)
        self.register_buffer("story_capacity", torch.tensor(sizes.memory_slots), persistent=False)
        word_table = lambda: nn.Embedding(rows, d, padding_idx=0)  # PAD = 0 has a zero, frozen vector
        time_table = lambda: nn.Embedding(T, d)
        own_times = 0 if config.time_words else 1  # time words live in the word tables
        if config.tying == "adjacent":
            # K + 1 matrices: hop k reads with A^k = E[k-1] and C^k = E[k]; B = E[0]; W^T = E[K]
            self.words = nn.ModuleList(word_table() for _ in range(K + 1))
            self.times = nn.ModuleList(time_table() for _ in range((K + 1) * own_times))
        else:
            # one A, one C for every hop, a separate question embedding B and answer map W, and H
            self.words = nn.ModuleList(word_table() for _ in range(3))  # A, C, B
            self.times = nn.ModuleList(time_table() for _ in range(2 * own_times))  # T_A, T_C
            self.H = nn.Linear(d, d, bias=False)
            self.W = nn.Linear(d, rows, bias=False)
        for parameter in self.parameters():
            nn.init.normal_(parameter, std=config.init_std)
        for table in self.words:
            table.weight.data[0] = 0  # the padding word adds nothing

    @property
    def use_softmax(self) -> bool:
        return bool(self.softmax_on)

    @use_softmax.setter
    def use_softmax(self, on: bool) -> None:  # the training loop's linear start
        self.softmax_on.fill_(on)

    def hop_tables(self, hop: int) -> tuple[nn.Embedding, nn.Embedding, nn.Embedding | None, nn.Embedding | None]:
        """(A, C, T_A, T_C) of hop 0..K-1; T_A, T_C are None with time words (rows of A and C)."""
        first, second = (hop, hop + 1) if self.config.tying == "adjacent" else (0, 1)
        if self.config.time_words:
            return self.words[first], self.words[second], None, None
        return self.words[first], self.words[second], self.times[first], self.times[second]

    def question_table(self) -> nn.Embedding:
        return self.words[0] if self.config.tying == "adjacent" else self.words[2]

    def bags(self, words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch's words (..., w) and each word's weights (..., w, d), computed once and shared by every table.

        Every encoding's weight of word j in dimension k is alpha_j + slope_k * beta_j (`word_weights`);
        padding words weigh 0 (their vector is zero anyway, and so they learn nothing).
        """
        alpha, beta = word_weights(words, self.config.encoding, self.sentence_width)
        weights = alpha[..., None]  # (..., w, 1)
        if beta is not None:
            weights = weights + beta[..., None] * slope(self.config.encoding, self.config.dim, words.device)  # (..., w, d)
        return words, weights * (words != 0)[..., None]

    def embed(self, tables: list[nn.Embedding], bags: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Sentence vectors in each table (..., n, d): the weighted sums of the words' vectors.

        The n tables are read as one, stacked (rows, n, d), so each word is looked up once. Stacked, not
        side by side (rows, n d): a column's place in its table is then an index of its own, so the
        compiled backward's scatter into the tables weights each column without a division per element
        (results/speed/step-changes.json times it against the side-by-side tables). Compiled (memnet.population), the sum
        is written out word by word: the lookups, weights and sum then fuse into one loop over the n d
        columns, reading whole table rows. Written as a reduction over w, inductor vectorises across the
        words instead, with a masked gather per column, several times slower on sentences of 9 words or
        more. Eagerly, one lookup of all the words is fewer calls. (Weighted bags over the vocabulary
        times the tables, also tried, cost V/w times the arithmetic.)"""
        words, weights = bags  # (..., w), (..., w, d)
        table = torch.stack([t.weight for t in tables], 1)  # (rows, n, d)
        if torch.compiler.is_compiling():
            return sum(table[words[..., j]] * weights[..., j, None, :] for j in range(words.shape[-1]))
        return (table[words] * weights[..., None, :]).sum(-3)

    def story_tables(self) -> list[nn.Embedding]:
        """The word tables that read the story: adjacent, A^1 = E[0] .. A^K = E[K-1] and C^K = E[K]; layer-wise, A and C."""
        return list(self.words) if self.config.tying == "adjacent" else [self.words[0], self.words[1]]

    def time_vectors(self, words: nn.Embedding, times: nn.Embedding | None, time: torch.Tensor) -> torch.Tensor:
        """The temporal encoding (sec. 4.1) of memories of recency `time` (b, m): (b, m, d).

        From the table's own T_A / T_C, or with `time_words` from its rows V.. (the release's time
        words); a recency past the T vectors reads the last (the release's clamp to sz); with
        `time_scale` weighted by column J of the release's position weights, as its time word sits
        at place J of every memory: l_kJ = 1 + 4 (k - (d+1)/2)(J - (J+1)/2) / (d J).
        """
        time = time.clamp(max=self.time_rows - 1)  # (b, m)
        if self.config.time_words:
            vectors = F.embedding(self.vocab_rows + time, words.weight)  # (b, m, d)
        else:
            vectors = times(time)  # (b, m, d)
        if self.config.time_scale:
            J = self.sentence_width
            vectors = vectors * (1 + slope("position-release", self.config.dim, vectors.device) * (J - (J + 1) / 2) / J)  # (d,)
        return vectors

    def update(self, hop: int, u: torch.Tensor, read: torch.Tensor) -> torch.Tensor:
        """The controller after hop `hop` from its read o: u + o (adjacent), H u + o (layer-wise), then any ReLU. (b, d)"""
        u = u + read if self.config.tying == "adjacent" else self.H(u) + read  # (b, d)
        return torch.relu(u) if self.config.relu else u

    def forward(self, batch: StoryBatch) -> Output:
        story, mask, query = batch.story, batch.memory_mask, batch.query  # (b, m, w), (b, m), (b, q)
        if self.config.recent_only:  # slots hold a story oldest first: recency counts back from its last
            recency = mask.sum(1, keepdim=True) - 1 - torch.arange(mask.shape[1], device=mask.device)  # (b, m)
            mask = mask & (recency < self.story_capacity)
        u = self.embed([self.question_table()], self.bags(query))[:, 0]  # (b, d)
        tables = self.story_tables()
        if len(batch.sentences):  # the sentence table (memnet.batches.StoryBatch): each distinct sentence once
            sentences = self.embed(tables, self.bags(batch.sentences))[batch.sentence]  # (S, n, d) -> (b, m, n, d)
        else:
            sentences = self.embed(tables, self.bags(story))  # (b, m, n, d): the story in every table at once
        memories = {}  # table -> its memory vectors (b, m, d); under tying one table serves two hops

        def memory(words: nn.Embedding, times: nn.Embedding | None) -> torch.Tensor:
            if words not in memories:
                memories[words] = sentences[:, :, tables.index(words)]
                if self.config.temporal:
                    memories[words] = memories[words] + self.time_vectors(words, times, batch.time)
            return memories[words]

        # The memory has `memory_slots` slots; those no sentence fills hold zero vectors and still take
        # part in the softmax, as in the official release. Reading them is reading nothing: yes/no
        # tasks (6, 9, 10) need it to say "no": compare results/babi-1k-memn2n-empty-memories with
        # results/babi-1k-memn2n, where these slots were masked.
        empty = (self.memory_slots - mask.sum(1)).clamp(min=0)  # (b,); capacity 0: none

        attention = []
        for hop in range(self.config.hops):
            A, C, T_A, T_C = self.hop_tables(hop)
            read = address(u[:, None], memory(A, T_A), memory(C, T_C), mask, empty=empty, softmax=self.softmax_on)
            u = self.update(hop, u, read.value[:, 0])  # (b, d)
            attention.append(read.weights[:, 0])  # (b, m)
        if self.config.tying == "adjacent":
            logits = u @ self.words[-1].weight.T  # (b, rows): W^T = C^K
        else:
            logits = self.W(u)  # (b, rows)
        column = torch.arange(logits.shape[-1], device=logits.device)  # (rows,)
        if self.config.answers == "table":
            # the release's nil word: a class whose column of W it zeroes after every update, so its logit is 0;
            # a constant here, so that no gradient reaches C^K's padding row
            logits = logits.masked_fill(column == 0, 0.0)
        else:
            # PAD is never an answer, nor is a time word; masking PAD also keeps C^K's padding row at zero under W^T = C^K
            logits = logits.masked_fill((column == 0) | (column >= self.vocab_rows), float("-inf"))
        return Output(logits, torch.stack(attention, 1))  # (b, rows), (b, k, m)
