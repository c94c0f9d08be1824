"""A small transformer over sentence vectors: the Transformer's layer (Vaswani et al. 2017, "Attention Is
All You Need", sec. 3.1-3.3; pre-norm as in Xiong et al. 2020) with the story's sentences as its tokens.

Shape legend: b batch, m memory slots (sentences), w words per sentence, q words per question,
d model size, h heads, e head size (d / h), n tokens (1 + m: the question, then the sentences), l layers.

    sentence i  -> s_i = sum_j l_j E[x_ij] + T(time_i)     (b, m, d)  MemN2N's encoding (sec. 4.1 of its paper)
    question    -> s_0 = sum_j l_j E[q_j] + Q              (b, d)     Q: a learned "this is the question" vector
    each layer:  x <- x + MultiHead(LN(x) reads LN(sentences)) ;  x <- x + FFN(LN(x))     x: (b, n, d)
    logits = W LN(x_0)                                     (b, V)

Every token, the question's included, attends over the valid sentences only (keys and values are the
sentences, `memnet.addressing.address` with a scaled dot score): the sentences read each other, and the
question reads the story once a layer, as a MemN2N hop does. So the question's weights are a
distribution over the story, and `Output.attention` holds them per layer, averaged over heads:
(b, l, m), which `memnet inspect`, the supporting-fact report and `memnet serve` show as MemN2N's hops are shown,
each row named a layer (`ATTENTION_ROW`).

Registered as `storyformer`; preset `storyformer` trains it with Adam at lr 0.001, as the recurrent
baselines train (a starting point, not tuned: 0.7% test error on generated task 1, 1000 questions, after 15 epochs):

    memnet train --model storyformer --preset storyformer --task babi:1 --epochs 15
"""

import math
from typing import Annotated, ClassVar, Literal

import torch
from einops import rearrange
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from torch import nn

from memnet.addressing import address, dot_score
from memnet.batches import DataSizes, StoryBatch
from memnet.models.memn2n import weighted_bag
from memnet.models.output import Output


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class StoryTransformerConfig:
    dim: Annotated[int, Field(ge=1)] = 32  # model size d (word vectors, sentence tokens, every layer)
    attention_heads: Annotated[int, Field(ge=1)] = 4  # attention heads h; d must divide into them
    layers: Annotated[int, Field(ge=1)] = 3  # transformer layers l, each one read of the story by the question
    tie_layers: bool = False  # one layer's weights for every layer, as MemN2N's layer-wise tying and the
    # Universal Transformer (Dehghani et al. 2019) share theirs across depth
    ffn: Annotated[int, Field(ge=1)] = 64  # hidden size of each layer's feed-forward net
    encoding: Literal["bow", "position", "position-release"] = "position-release"  # word weights in a sentence
    # vector, as MemN2N's (memnet.models.memn2n.word_weights)
    temporal: bool = True  # add a learned vector by recency to each sentence (sizes.time_slots rows)
    init_std: Annotated[float, Field(gt=0)] = 0.1  # word, time and question vectors from N(0, init_std)

    def __post_init__(self):
        if self.dim % self.attention_heads:
            raise ValueError(f"dim must divide into the heads: dim={self.dim} is not a multiple of attention_heads={self.attention_heads}")


class StoryTransformer(nn.Module):
    ATTENTION_ROW: ClassVar[str] = "layer"  # a row of Output.attention is one layer's read (memnet.models.output)

    def __init__(self, config: StoryTransformerConfig, sizes: DataSizes):
        super().__init__()
        if config.encoding == "position-release" and sizes.sentence_size < 1:
            raise ValueError("encoding='position-release' needs the data's sentence width: sizes.sentence_size is 0")
        if config.temporal and sizes.time_slots < 1:
            raise ValueError("temporal encoding needs story data: sizes.time_slots is 0")
        self.config = config
        d, V = config.dim, sizes.vocab_size
        # per-member numbers (memnet.population): the release's sentence width J and the recency vectors' count
        self.register_buffer("sentence_width", torch.tensor(float(sizes.sentence_size)), persistent=False)
        self.register_buffer("time_rows", torch.tensor(max(1, sizes.time_slots)), persistent=False)
        self.words = nn.Embedding(V, d, padding_idx=0)  # E; PAD = 0 adds nothing
        self.times = nn.Embedding(max(1, sizes.time_slots), d)  # T
        self.question = nn.Parameter(torch.zeros(d))  # Q
        for parameter in (self.words.weight, self.times.weight, self.question):
            nn.init.normal_(parameter, std=config.init_std)
        self.words.weight.data[0] = 0
        self.blocks = nn.ModuleList(Block(config) for _ in range(1 if config.tie_layers else config.layers))
        self.norm = nn.LayerNorm(d)
        self.answer = nn.Linear(d, V)  # W

    def embed(self, words: torch.Tensor) -> torch.Tensor:
        """Sentence vectors (..., d) of word ids (..., w): the words' vectors weighted by place and summed."""
        return weighted_bag(words, self.words, self.config.encoding, self.sentence_width)

    def forward(self, batch: StoryBatch) -> Output:
        mask = batch.memory_mask  # (b, m)
        if len(batch.sentences):  # the sentence table (memnet.batches.StoryBatch): each distinct sentence once
            sentences = self.embed(batch.sentences)[batch.sentence]  # (S, d) -> (b, m, d)
        else:
            sentences = self.embed(batch.story)  # (b, m, d)
        if self.config.temporal:
            sentences = sentences + self.times(batch.time.clamp(max=self.time_rows - 1))  # (b, m, d)
        question = self.embed(batch.query) + self.question  # (b, d)
        x = torch.cat([question[:, None], sentences], 1)  # (b, n, d)
        attention = []
        for layer in range(self.config.layers):
            x, weights = self.blocks[layer % len(self.blocks)](x, mask)  # (b, n, d), (b, h, n, m)
            attention.append(weights[:, :, 0].mean(1))  # (b, m): the question's read, over heads
        logits = self.answer(self.norm(x[:, 0]))  # (b, V)
        logits = logits.masked_fill(torch.arange(logits.shape[-1], device=logits.device) == 0, float("-inf"))  # PAD
        return Output(logits, torch.stack(attention, 1))  # (b, V), (b, l, m)


class Block(nn.Module):
    """One pre-norm layer: every token reads the sentences (multi-head), then a feed-forward net."""

    def __init__(self, config: StoryTransformerConfig):
        super().__init__()
        d, self.heads = config.dim, config.attention_heads
        self.norm_read, self.norm_keys, self.norm_ffn = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.query, self.key, self.value, self.out = (nn.Linear(d, d) for _ in range(4))
        self.ffn = nn.Sequential(nn.Linear(d, config.ffn), nn.ReLU(), nn.Linear(config.ffn, d))
        self.scale = 1 / math.sqrt(d // config.attention_heads)  # scaled dot product (Vaswani et al. eq. 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.heads
        sentences = self.norm_keys(x[:, 1:])  # (b, m, d)
        split = lambda t, pattern: rearrange(t, pattern, h=h)
        q = split(self.query(self.norm_read(x)), "b n (h e) -> (b h) n e")
        k = split(self.key(sentences), "b m (h e) -> (b h) m e")
        v = split(self.value(sentences), "b m (h e) -> (b h) m e")
        read = address(q, k, v, mask.repeat_interleave(h, 0), score=lambda a, b: dot_score(a, b) * self.scale)
        x = x + self.out(rearrange(read.value, "(b h) n e -> b n (h e)", h=h))  # (b, n, d)
        x = x + self.ffn(self.norm_ffn(x))  # (b, n, d)
        return x, rearrange(read.weights, "(b h) n m -> b h n m", h=h)
