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
    init_std: Annotated[float, Field(gt=0)] = 0.1  # weights from N(0, 0.1) (sec. 4.2)

    def __post_init__(self):
        if self.relu and self.tying != "layerwise":
            raise ValueError(f"relu applies to layer-wise tying only: relu=True needs tying='layerwise', got tying={self.tying!r}")


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
    J the sentence's own length. position-release: 1 + 4 (k - (d+1)/2)(j - (J+1)/2) / (d J):
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
    return ones, None


def slope(encoding: str, dim: int, device) -> torch.Tensor:
    """slope_k of `word_weights`: (d,)."""
    k = torch.arange(1, dim + 1, device=device).float()
    return -k / dim if encoding == "position" else 4 * (k - (dim + 1) / 2) / dim


class MemN2N(nn.Module):
    def __init__(self, config: MemN2NConfig, sizes: DataSizes):
        super().__init__()
        if config.temporal and sizes.time_slots < 1:
            raise ValueError("temporal encoding needs story data: sizes.time_slots is 0")
        if config.encoding == "position-release" and sizes.sentence_size < 1:
            raise ValueError("encoding='position-release' needs the data's sentence width: sizes.sentence_size is 0")
        self.config, self.sizes = config, sizes
        # Numbers that may differ between the members of a population (memnet.population) are buffers,
        # so each member carries its own: whether the softmax is on (off during linear start), the
        # memory's capacity (0: no empty memories) and the release's sentence width J.
        self.register_buffer("softmax_on", torch.tensor(True), persistent=False)
        self.register_buffer("memory_slots", torch.tensor(sizes.memory_slots if config.empty_memories else 0), persistent=False)
        self.register_buffer("sentence_width", torch.tensor(float(sizes.sentence_size)), persistent=False)
        V, d, T, K = sizes.vocab_size, config.dim, max(1, sizes.time_slots), config.hops
        word_table = lambda: nn.Embedding(V, d, padding_idx=0)  # PAD = 0 has a zero, frozen vector
        if config.tying == "adjacent":
            # K + 1 matrices: hop k reads with A^k = E[k-1] and C^k = E[k]; B = E[0]; W^T = E[K]
            self.words = nn.ModuleList(word_table() for _ in range(K + 1))
            self.times = nn.ModuleList(nn.Embedding(T, d) for _ in range(K + 1))
        else:
            # one A, one C for every hop, a separate question embedding B and answer map W, and H
            self.words = nn.ModuleList(word_table() for _ in range(3))  # A, C, B
            self.times = nn.ModuleList(nn.Embedding(T, d) for _ in range(2))  # T_A, T_C
            self.H = nn.Linear(d, d, bias=False)
            self.W = nn.Linear(d, V, bias=False)
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

    def hop_tables(self, hop: int) -> tuple[nn.Embedding, nn.Embedding, nn.Embedding, nn.Embedding]:
        """(A, C, T_A, T_C) of hop 0..K-1."""
        if self.config.tying == "adjacent":
            return self.words[hop], self.words[hop + 1], self.times[hop], self.times[hop + 1]
        return self.words[0], self.words[1], self.times[0], self.times[1]

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

    def embed(self, table: nn.Embedding, bags: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Sentence vectors (..., d): the weighted sum of the words' vectors. Compiled (memnet.population),
        the lookup, the weighting and the sum fuse into one loop, and no (..., w, d) tensor is written:
        measured 3.2x faster per step than multiplying weighted bags over the vocabulary by the table."""
        words, weights = bags
        return (F.embedding(words, table.weight) * weights).sum(-2)  # (..., d)

    def forward(self, batch: StoryBatch) -> Output:
        story, mask, query = batch.story, batch.memory_mask, batch.query  # (b, m, w), (b, m), (b, q)
        story_bags, query_bags = self.bags(story), self.bags(query)  # words and their weights (b, m, w, d), (b, q, d)
        u = self.embed(self.question_table(), query_bags)  # (b, d)
        memories = {}  # table -> its memory vectors (b, m, d); under tying one table serves two hops

        def memory(words: nn.Embedding, times: nn.Embedding) -> torch.Tensor:
            if words not in memories:
                memories[words] = self.embed(words, story_bags)
                if self.config.temporal:
                    memories[words] = memories[words] + times(batch.time)
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
            u = u + read.value[:, 0] if self.config.tying == "adjacent" else self.H(u) + read.value[:, 0]  # (b, d)
            if self.config.relu:
                u = torch.relu(u)
            attention.append(read.weights[:, 0])  # (b, m)
        if self.config.tying == "adjacent":
            logits = u @ self.words[-1].weight.T  # (b, V): W^T = C^K
        else:
            logits = self.W(u)  # (b, V)
        # PAD is never an answer; masking it also keeps C^K's padding row at zero under W^T = C^K
        logits = logits.masked_fill(torch.arange(logits.shape[-1], device=logits.device) == 0, float("-inf"))
        return Output(logits, torch.stack(attention, 1))  # (b, V), (b, k, m)
