"""Query-Reduction Networks (Seo, Min, Farhadi, Hajishirzi; ICLR 2017): a recurrent network over the story's
sentences whose state is the question, reduced by each sentence to an easier question (sec. 2).

Shape legend: b batch, m memory slots (the sentences, QRN's time axis t), w words per sentence, q words per
question, d hidden size, l layers, V vocabulary.

Sentences and the question are position-encoded bags of words (sec. 5.1: MemN2N's position encoding) in one
embedding A. One layer (sec. 2.1-2.2), with x_t the t-th sentence and q_t the layer's query at t (layer 1: the
question at every t; layer k + 1: layer k's reduced queries, forward plus backward):

    z_t  = sigmoid(w_z . (x_t * q_t) + b_z - forget_bias)     update gate, a scalar          (b, m)
    r_t  = sigmoid(w_r . (x_t * q_t) + b_r)                    reset gate, one per direction  (b, m)
    h~_t = tanh(W_h [q_t; x_t] + b_h)                          candidate reduced query        (b, m, d)
    h_t  = z_t r_t h~_t + (1 - z_t) h_(t-1),  h_0 = 0           reduced query                  (b, m, d)

The backward direction reads the sentences last to first. As in the official code (github seominjoon/qrn,
babi/model.py), the last layer runs forward only and without the reset gate, the layers share their weights,
and the answer is a linear map of the last reduced query, softmax(W h_T) over the vocabulary (no bias).

Parallel form (sec. 2.3): the recurrence unrolls to h_t = sum_(i<=t) [prod_(j=i+1..t) (1 - z_j)] z_i r_i h~_i,
so every step at once is one (m, m) lower-triangular matrix of decays, exp(c_t - c_i) with c the running sum of
log(1 - z), times z r h~ (`reduce`; `reduce_stepwise` is the recurrence, and the tests hold them equal). A
slot no sentence fills has z = r = 0: it neither writes nor decays, so padding after a story changes nothing,
and the backward pass may start at the last slot instead of each story's last sentence.

What QRN attends to is its update gate: `Output.attention` holds z per layer (b, l, m), a gate in [0, 1] per
sentence, not a distribution over the story (ATTENTION_SUMS_TO_ONE), shown by `memnet inspect` and `memnet serve`
a row a layer.

Presets `qrn` (the paper's 1k setting, "2r": 2 layers with reset gates, d = 50, AdaGrad at 0.5, L2 0.001) and
`qrn-10k` (its 10k setting, "6r200": 6 layers, d = 200, lr 0.1, L2 0.0005), memnet.presets.
"""

import math
from typing import Annotated, Literal

import torch
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from torch import nn

from memnet.batches import DataSizes, StoryBatch
from memnet.models.memn2n import weighted_bag
from memnet.models.output import Output


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class QRNConfig:
    dim: Annotated[int, Field(ge=1)] = 50  # hidden size d: 50 on bAbI 1k, 200 on 10k (sec. 5.1)
    layers: Annotated[int, Field(ge=1)] = 2  # QRN layers: "2r" on 1k, "6r200" on 10k
    reset: bool = True  # a reset gate on every layer but the last ("r" in "2r")
    bidirectional: bool = True  # every layer but the last reads the story both ways; the next layer's query is
    # the sum of the two directions' reduced queries (sec. 2.2). False: forward only
    tie_layers: bool = True  # one unit's weights for every layer, as the official code shares them
    forget_bias: float = 2.5  # subtracted inside the update gate's sigmoid: gates start nearly closed, so the
    # question is kept until a sentence matters (the official code's att_forget_bias)
    encoding: Literal["position-fixed", "position", "bow"] = "position-fixed"  # word weights in a sentence vector
    # (memnet.models.memn2n.word_weights): "position-fixed": MemN2N's position encoding over the data's fixed
    # sentence width, as the official code's; "position": over each sentence's own length
    init: Literal["paper", "code"] = "paper"  # "paper": sec. 5.1, the embedding's and the answer's weights from
    # N(0, init_std), the unit's Glorot-uniform. "code": as the official code draws them (babi/model.py), which the
    # paper's text does not say: the embedding and both gates' weights uniform in [-sqrt 3, sqrt 3] (std 1, so the
    # gates start nearly shut or open per sentence), the candidate's and the answer's Glorot-uniform. Biases 0 either way
    init_std: Annotated[float, Field(gt=0)] | None = None  # init "paper": the std of the embedding's and the
    # answer's weights; None: 1/sqrt(d) (sec. 5.1)


def reduce(candidate: torch.Tensor, write: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
    """Every h_t of h_t = write_t candidate_t + (1 - update_t) h_(t-1), h_0 = 0, at once (the parallel form).

    candidate (b, m, d), write (b, m) (z r, or z without reset), update (b, m) (z) -> (b, m, d)
    """
    m = candidate.shape[1]
    kept = torch.log1p(-update.clamp(max=1 - 1e-6)).cumsum(1)  # (b, m) c_t = sum_(j<=t) log(1 - z_j)
    decay = kept[:, :, None] - kept[:, None, :]  # (b, t, i) sum_(j=i+1..t) log(1 - z_j)
    causal = torch.ones(m, m, dtype=torch.bool, device=candidate.device).tril()  # (t, i): i <= t
    decay = decay.masked_fill(~causal, float("-inf")).exp()  # (b, t, i); masked before exp, so nothing overflows
    return decay @ (write[..., None] * candidate)  # (b, m, d)


def reduce_stepwise(candidate: torch.Tensor, write: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
    """`reduce` as the recurrence, a step at a time (the reference the parallel form is tested against)."""
    h, states = torch.zeros_like(candidate[:, 0]), []
    for t in range(candidate.shape[1]):
        h = write[:, t, None] * candidate[:, t] + (1 - update[:, t, None]) * h  # (b, d)
        states.append(h)
    return torch.stack(states, 1)  # (b, m, d)


class Unit(nn.Module):
    """One layer's weights: the update gate, the two directions' reset gates and the candidate reduced query."""

    def __init__(self, d: int):
        super().__init__()
        self.update = nn.Linear(d, 1)  # w_z, b_z on x * q
        self.reset = nn.Linear(d, 2)  # w_r, b_r on x * q: forward, backward
        self.candidate = nn.Linear(2 * d, d)  # W_h, b_h on [q; x]
        for layer in (self.update, self.reset, self.candidate):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


class QRN(nn.Module):
    ATTENTION_ROW = "layer"  # a row of `Output.attention` is one layer's update gate
    ATTENTION_SUMS_TO_ONE = False  # gates in [0, 1] per sentence, not a distribution over the story

    def __init__(self, config: QRNConfig, sizes: DataSizes):
        super().__init__()
        if config.encoding == "position-fixed" and sizes.sentence_size < 1:
            raise ValueError("encoding='position-fixed' needs the data's sentence width: sizes.sentence_size is 0")
        self.config = config
        d, V = config.dim, sizes.vocab_size
        # a per-member number (memnet.population): the data's sentence width J
        self.register_buffer("sentence_width", torch.tensor(float(max(1, sizes.sentence_size))), persistent=False)
        self.words = nn.Embedding(V, d, padding_idx=0)  # A, for sentences and the question
        self.answer = nn.Linear(d, V, bias=False)  # W
        self.units = nn.ModuleList(Unit(d) for _ in range(1 if config.tie_layers else config.layers))
        if config.init == "paper":
            for weight in (self.words.weight, self.answer.weight):
                nn.init.normal_(weight, std=config.init_std or 1 / math.sqrt(d))
        else:
            nn.init.xavier_uniform_(self.answer.weight)
            for weight in [self.words.weight] + [w for unit in self.units for w in (unit.update.weight, unit.reset.weight)]:
                nn.init.uniform_(weight, -math.sqrt(3), math.sqrt(3))
        self.words.weight.data[0] = 0

    def embed(self, words: torch.Tensor) -> torch.Tensor:
        """Sentence vectors (..., d) of word ids (..., w): the words' vectors weighted by place and summed."""
        return weighted_bag(words, self.words, self.config.encoding, self.sentence_width)

    def forward(self, batch: StoryBatch) -> Output:
        mask = batch.memory_mask.to(torch.float32)  # (b, m): an empty slot neither writes nor decays
        if len(batch.sentences):  # the sentence table (memnet.batches.StoryBatch): each distinct sentence once
            x = self.embed(batch.sentences)[batch.sentence]  # (S, d) -> (b, m, d)
        else:
            x = self.embed(batch.story)  # (b, m, d)
        query = self.embed(batch.query)[:, None].expand_as(x)  # (b, m, d): the question at every step
        gates = []
        for layer in range(self.config.layers):
            unit = self.units[layer % len(self.units)]
            z = torch.sigmoid(unit.update(x * query)[..., 0] - self.config.forget_bias) * mask  # (b, m)
            candidate = torch.tanh(unit.candidate(torch.cat([query, x], -1)))  # (b, m, d)
            gates.append(z)
            if layer == self.config.layers - 1:  # the last layer: forward only, no reset (the official code)
                h = reduce(candidate, z, z)  # (b, m, d)
                break
            r = torch.sigmoid(unit.reset(x * query)) * mask[..., None] if self.config.reset else mask[..., None].expand(*mask.shape, 2)
            query = reduce(candidate, z * r[..., 0], z)  # (b, m, d) forward
            if self.config.bidirectional:
                query = query + reduce(candidate.flip(1), (z * r[..., 1]).flip(1), z.flip(1)).flip(1)  # + backward
        logits = self.answer(h[:, -1])  # (b, V): the last slot holds the last sentence's h (empty slots carry it)
        logits = logits.masked_fill(torch.arange(logits.shape[-1], device=logits.device) == 0, float("-inf"))  # PAD
        return Output(logits, torch.stack(gates, 1))  # (b, V), (b, l, m)
