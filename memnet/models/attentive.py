"""An attentive reader over story sentences: the Attentive Reader of Hermann et al. 2015 ("Teaching
Machines to Read and Comprehend", sec. 3.2) with the bilinear score of Chen, Bolton & Manning 2016
("A Thorough Examination of the CNN/Daily Mail Reading Comprehension Task", sec. 3.2), reading
sentences instead of tokens so that its attention compares with MemN2N's.

Shape legend: b batch, m memory slots (sentences), w words per sentence, q words per question,
d embedding size, h hidden size, C classes, T time slots.

    story (b, m, w) -> one GRU over each sentence's words     -> s_i (b, m, h), + T(time_i)
    query (b, q)    -> another GRU over the question's words  -> u   (b, h)
    p = softmax_i(u^T W s_i) over the valid slots,  r = sum_i p_i s_i          (memnet.addressing)
    logits = V tanh(G [u; r])                                   (b, C)   (Hermann et al. eq. 11)

A learned recency vector T(time) is added to each sentence encoding (MemN2N's temporal encoding,
Sukhbaatar et al. 2015 sec. 4.1): a sentence read on its own cannot tell whether it is the latest
one about Mary, which is what bAbI task 1 asks. One hop, so attention comes back as (b, 1, m).

The loop's SGD default is for MemN2N; this trains with Adam (0.2% test error on bAbI 1k task 1
in our one run of this command; lr 0.001 still stood at ~10% after 20 epochs):

    memnet train --model attentive --task babi:1 --optimizer adam --lr 0.003 --epochs 20
"""

from typing import Annotated

import torch
from einops import rearrange
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from memnet.addressing import address, dot_score
from memnet.batches import DataSizes, StoryBatch
from memnet.models.output import Output


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class AttentiveConfig:
    dim: Annotated[int, Field(ge=1)] = 50  # word embedding size d, shared by story and question
    hidden: Annotated[int, Field(ge=1)] = 100  # GRU size h of the sentence and question encoders
    temporal: bool = True  # add a learned vector by recency to each sentence encoding (sizes.time_slots rows)
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0  # on embeddings and before the classifier


def encode(gru: nn.GRU, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Final GRU state of each row of x (n, w, d) read up to its length: (n, h). Empty rows read one pad."""
    packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    return gru(packed)[1][-1]  # (n, h)


class Attentive(nn.Module):
    def __init__(self, config: AttentiveConfig, sizes: DataSizes):
        super().__init__()
        if config.temporal and sizes.time_slots < 1:
            raise ValueError("temporal encoding needs story data: sizes.time_slots is 0")
        self.config = config
        d, h = config.dim, config.hidden
        self.embed = nn.Embedding(sizes.vocab_size, d, padding_idx=0)
        self.sentence_gru = nn.GRU(d, h, batch_first=True)
        self.question_gru = nn.GRU(d, h, batch_first=True)
        self.time = nn.Embedding(sizes.time_slots, h) if config.temporal else None
        if self.time is not None:
            nn.init.normal_(self.time.weight, std=0.1)  # MemN2N's N(0, 0.1); torch's N(0, 1) would drown the GRU's (-1, 1) outputs
        self.bilinear = nn.Linear(h, h, bias=False)  # W of u^T W s_i
        self.combine = nn.Linear(2 * h, h)  # G of tanh(G [u; r])
        self.head = nn.Linear(h, sizes.num_classes)  # V
        self.drop = nn.Dropout(config.dropout)

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Bilinear score u^T W s_i: (b, 1, h), (b, m, h) -> (b, 1, m)."""
        return dot_score(self.bilinear(query), keys)

    def forward(self, batch: StoryBatch) -> Output:
        story, mask, query = batch.story, batch.memory_mask, batch.query  # (b, m, w), (b, m), (b, q)
        words = rearrange(story, "b m w -> (b m) w")
        sentences = encode(self.sentence_gru, self.drop(self.embed(words)), (words != 0).sum(1))  # (b*m, h)
        sentences = rearrange(sentences, "(b m) h -> b m h", b=story.shape[0])
        if self.time is not None:
            sentences = sentences + self.time(batch.time)  # (b, m, h)
        u = encode(self.question_gru, self.drop(self.embed(query)), (query != 0).sum(1))  # (b, h)
        read = address(u[:, None], sentences, sentences, mask, score=self.score)  # value (b, 1, h), weights (b, 1, m)
        g = torch.tanh(self.combine(torch.cat([u, read.value[:, 0]], -1)))  # (b, h)
        return Output(self.head(self.drop(g)), read.weights)  # (b, C), (b, 1, m)
