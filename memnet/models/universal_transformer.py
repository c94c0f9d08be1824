"""The Universal Transformer (Dehghani et al., ICLR 2019, "Universal Transformers"): one transformer block applied
again and again with the same weights (sec. 2.1), a coordinate embedding added before every step (eq. 4), and
per-position dynamic halting by Adaptive Computation Time (sec. 2.2; Graves 2016, "Adaptive Computation Time for
Recurrent Neural Networks", sec. 2), over bAbI's facts and question as sec. 3.1 feeds them.

Shape legend: b batch, m memory slots (sentences), w words per sentence, q words per question, d model size,
h heads, e head size (d / h), n tokens (1 + m: the question, then the sentences), T steps (at most).

    sentence i -> s_i = sum_j E[x_ij] * F[j]                       (b, m, d)  F (w, d): a learned multiplicative mask
    question   -> s_0 = sum_j E[q_j] * G[j]                        (b, d)     G: its own mask, or F (`question_mask`)
    step t = 1..T:  x = h^(t-1) + P(i) + P(t)                      (b, n, d)  h^0 = s; P: sinusoids (eq. 4), i the token
                    p^t = sigmoid(w . x + c)                       (b, n)     the halting unit
                    h^t = x + MultiHead(LN(x)) ; h^t += FFN(LN(h^t))          on the positions still running; a halted
                                                                              position keeps its state (sec. 2.2)
    y = sum_t a^t h^t                                              (b, n, d)  a^t: ACT's weights, summing to 1 (below);
                                                                              halting="fixed": y = h^T
    logits = W LN(y_0)                                             (b, V)

Sec. 3.1: "we encode each fact in the story by applying a learned multiplicative positional mask to each word's
embedding, and summing up all embeddings. We embed the question in the same way, and then feed the (Universal)
Transformer with these embeddings". The authors' bAbI port (github.com/MostafaDehghani/bAbI-T2T,
t2t_usr_dir/babi_transformer.py) gives the story and the question masks of their own, both starting at 1, and puts
the question after the story; here it comes first, so the answer reads token 0 (the paper does not say how the answer
is read: the port's class-label head of tensor2tensor averages every position; we read the question's state, as the
storyformer does). Every token attends over the valid tokens, the question's included; `Output.attention` holds the
question's weights on the sentences per step, averaged over heads: (b, T, m), a row of zeros at the steps after the
question halted. They leave out what it puts on itself, so a row sums to less than 1 (`ATTENTION_SUMS_TO_ONE = False`:
no "empty memories" share is shown for it).

ACT, per position, with a fixed number of steps T and masks (no loop that stops on a value, so the forward vmaps
and compiles: memnet.population): a position runs while the sum of its halting probabilities stays below
1 - act_threshold; at the step N where the sum would reach it (or at step T) it halts with the remainder
R = 1 - sum_{t<N} p^t. Its output is the mix with weights p^1 .. p^(N-1), R, and its ponder cost N + R, whose mean
over the valid tokens, times `ponder_weight`, is the example's `Output.penalty` (added to the loss by the training
loop). `Output.steps` (b, m) is N + R per sentence. Tensor2tensor's `universal_transformer_act`
(universal_transformer_util.py) differs from the texts in two places, where this file follows the texts: it mixes the
step states by interpolation (s <- a h + (1 - a) s) where ACT takes their weighted sum, and it keeps transforming a
halted position (the others then read its new states) where the paper copies its state. This file does as it does in
two others: the halting unit reads the step's input x, and its bias starts at 1 (`act_halting_bias_init`).

Registered as `ut`; presets `ut` (the CPU size) and `ut-paper`, `ut-paper-act` (the authors' size) in memnet.presets:

    memnet train --model ut --preset ut --task babi:1
"""

import math
from typing import Annotated, ClassVar, Literal, NamedTuple

import torch
from einops import rearrange
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from torch import nn

from memnet.addressing import address, dot_score
from memnet.batches import DataSizes, StoryBatch
from memnet.models.output import Output

HALTING_BIAS = 1.0  # the halting unit's bias at the start: tensor2tensor's act_halting_bias_init (p = 0.73 at first)


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class UniversalTransformerConfig:
    dim: Annotated[int, Field(ge=2)] = 64  # model size d (word vectors, masks, every step's state)
    attention_heads: Annotated[int, Field(ge=1)] = 4  # attention heads h; d must divide into them
    ffn: Annotated[int, Field(ge=1)] = 128  # hidden size of the block's feed-forward net
    steps: Annotated[int, Field(ge=1)] = 4  # T: the steps of the shared block (halting="fixed"), or at most (ACT)
    halting: Literal["act", "fixed"] = "act"  # "act": per-position dynamic halting (sec. 2.2); "fixed": T steps each
    act_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.01  # ACT's epsilon: halt once the probabilities reach 1 - it
    ponder_weight: Annotated[float, Field(ge=0)] = 0.01  # weight of the ponder cost N + R in the loss (ACT only;
    # tensor2tensor's act_loss_weight); 0: no penalty, the steps are still adaptive
    question_mask: Literal["own", "shared"] = "own"  # the question's multiplicative mask: its own (the authors' port)
    # or the story's
    temporal: bool = False  # add a learned vector by recency to each sentence, as the storyformer does; off as in
    # the paper, where the token's position signal (the sentences' order) is the only time there is
    init_std: Annotated[float, Field(gt=0)] = 1.0  # word (and recency) vectors from N(0, init_std): tensor2tensor's
    # embeddings, N(0, 1/d) scaled by sqrt(d), are N(0, 1), as large as the sinusoids they are added to

    def __post_init__(self):
        if self.dim % self.attention_heads:
            raise ValueError(f"dim must divide into the heads: dim={self.dim} is not a multiple of attention_heads={self.attention_heads}")


class Recurrence(NamedTuple):
    """What the T steps leave: the state the answer reads and how it was mixed."""

    state: torch.Tensor  # (b, n, d) the halting-weighted mix of the step states (fixed steps: the last one)
    weights: torch.Tensor  # (b, T, n) each step's weight in that mix; 1 over T per position
    ponder: torch.Tensor  # (b, n) N + R (fixed steps: T)
    reads: torch.Tensor  # (b, T, m) the question's attention over the sentences per step (0 once it halted)


class UniversalTransformer(nn.Module):
    ATTENTION_ROW: ClassVar[str] = "step"  # a row of Output.attention is one step of the shared block
    ATTENTION_SUMS_TO_ONE: ClassVar[bool] = False  # the question also reads itself: its rows over sentences sum below 1

    def __init__(self, config: UniversalTransformerConfig, sizes: DataSizes):
        super().__init__()
        if sizes.sentence_size < 1:
            raise ValueError("the multiplicative masks need the data's sentence width: sizes.sentence_size is 0")
        if config.temporal and sizes.time_slots < 1:
            raise ValueError("temporal encoding needs story data: sizes.time_slots is 0")
        self.config = config
        d, V = config.dim, sizes.vocab_size
        # per-member numbers (memnet.population): the masks' and the recency vectors' rows
        self.register_buffer("mask_rows", torch.tensor(sizes.sentence_size), persistent=False)
        self.register_buffer("time_rows", torch.tensor(max(1, sizes.time_slots)), persistent=False)
        self.words = nn.Embedding(V, d, padding_idx=0)  # E; PAD = 0 adds nothing
        self.times = nn.Embedding(max(1, sizes.time_slots), d) if config.temporal else None  # by recency
        for table in (self.words, self.times):
            if table is not None:
                nn.init.normal_(table.weight, std=config.init_std)
        self.words.weight.data[0] = 0
        self.story_mask = nn.Parameter(torch.ones(sizes.sentence_size, d))  # F: one row per word place, from 1 (the port's)
        self.question_mask = nn.Parameter(torch.ones(sizes.sentence_size, d)) if config.question_mask == "own" else None  # G
        self.block = Block(config)  # the one block every step applies
        self.halt = nn.Linear(d, 1) if config.halting == "act" else None  # the halting unit
        if self.halt is not None:
            nn.init.constant_(self.halt.bias, HALTING_BIAS)
        self.norm = nn.LayerNorm(d)
        self.answer = nn.Linear(d, V)  # W

    def embed(self, words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Sentence vectors (..., d) of word ids (..., w): each word's vector times its place's row of `mask`, summed.
        Places past the mask's rows (a test sentence longer than any in training) read its last row."""
        place = torch.arange(words.shape[-1], device=words.device).clamp(max=self.mask_rows - 1)  # (w,)
        return (self.words(words) * mask[place]).sum(-2)  # (..., w, d) -> (..., d); PAD's vector is 0

    def tokens(self, batch: StoryBatch) -> torch.Tensor:
        """The question's and the sentences' vectors, question first: (b, n, d)."""
        if len(batch.sentences):  # the sentence table (memnet.batches.StoryBatch): each distinct sentence once
            sentences = self.embed(batch.sentences, self.story_mask)[batch.sentence]  # (S, d) -> (b, m, d)
        else:
            sentences = self.embed(batch.story, self.story_mask)  # (b, m, d)
        if self.config.temporal:
            sentences = sentences + self.times(batch.time.clamp(max=self.time_rows - 1))  # (b, m, d)
        question = self.embed(batch.query, self.story_mask if self.question_mask is None else self.question_mask)  # (b, d)
        return torch.cat([question[:, None], sentences], 1)  # (b, n, d)

    def recur(self, tokens: torch.Tensor, valid: torch.Tensor) -> Recurrence:
        """The T steps over tokens (b, n, d), of which `valid` (b, n) may be read; with ACT, each position's halting."""
        T, act = self.config.steps, self.config.halting == "act"
        n = tokens.shape[1]
        places = sinusoid(torch.arange(1, n + 1, device=tokens.device), self.config.dim)  # (n, d) P(i), tokens from 1
        h = tokens  # (b, n, d)
        mix = torch.zeros_like(h)  # (b, n, d)
        total = h.new_zeros(h.shape[:2])  # (b, n) halting probability so far
        running = torch.ones_like(total, dtype=torch.bool)  # (b, n) not yet halted
        ponder = h.new_zeros(h.shape[:2])  # (b, n) N + R
        weights, reads = [], []
        for t in range(1, T + 1):
            x = h + places + sinusoid(torch.tensor(t, device=h.device), self.config.dim)  # (b, n, d) coordinates (eq. 4)
            stepped, attention = self.block(x, valid)  # (b, n, d), (b, h, n, n)
            if act:
                p = torch.sigmoid(self.halt(x)).squeeze(-1)  # (b, n)
                weight, total, ponder, halted_now = act_step(p, total, running, ponder, self.config.act_threshold, t == T)
                taking = running  # the positions that take this step
                running = running & ~halted_now
            else:
                weight = torch.full_like(total, float(t == T))  # the last step's state alone
                taking = torch.ones_like(running)
            h = torch.where(taking[..., None], stepped, h)  # a halted position keeps its state (sec. 2.2)
            mix = mix + weight[..., None] * h
            weights.append(weight)
            reads.append(attention[:, :, 0, 1:].mean(1) * taking[:, :1])  # (b, m) the question's read, over heads
        if not act:
            ponder = torch.full_like(total, float(T))
        return Recurrence(mix, torch.stack(weights, 1), ponder, torch.stack(reads, 1))

    def forward(self, batch: StoryBatch) -> Output:
        mask = batch.memory_mask  # (b, m)
        valid = torch.cat([torch.ones_like(mask[:, :1]), mask], 1)  # (b, n): the question and the stored sentences
        run = self.recur(self.tokens(batch), valid)
        logits = self.answer(self.norm(run.state[:, 0]))  # (b, V)
        logits = logits.masked_fill(torch.arange(logits.shape[-1], device=logits.device) == 0, float("-inf"))  # PAD
        penalty = None
        if self.config.halting == "act" and self.config.ponder_weight > 0:
            mean_ponder = (run.ponder * valid).sum(1) / valid.sum(1)  # (b,) over the valid tokens
            penalty = self.config.ponder_weight * mean_ponder  # (b,)
        steps = run.ponder[:, 1:] * mask  # (b, m) 0 on padding
        return Output(logits, run.reads, penalty=penalty, steps=steps)  # (b, V), (b, T, m), (b,), (b, m)


def act_step(p, total, running, ponder, epsilon: float, last: bool):
    """One step of ACT's halting for every position (Graves 2016, eqs. 5-14), as masks.

    p (b, n) this step's halting probabilities, total (b, n) the sum of the earlier ones, running (b, n) the
    positions not yet halted, ponder (b, n) their cost so far. A running position halts here when total + p reaches
    1 - epsilon, or at the last step; it then weighs this step by the remainder R = 1 - total and its cost becomes
    N + R. Returns this step's weights (b, n) (p while running, R on halting, 0 after), the new total and ponder,
    and which positions halted at this step.
    """
    halts = running & ((total + p >= 1 - epsilon) | last)  # (b, n)
    remainder = 1 - total  # (b, n)
    weight = torch.where(halts, remainder, torch.where(running, p, torch.zeros_like(p)))  # (b, n)
    ponder = ponder + running.to(p.dtype) + torch.where(halts, remainder, torch.zeros_like(p))  # N counts, R on halting
    return weight, total + weight, ponder, halts


def sinusoid(positions: torch.Tensor, d: int) -> torch.Tensor:
    """The sinusoid signal of positions (...,) -> (..., d): sin(pos / 10000^(2j/d)) at column 2j, cos at 2j + 1
    (Vaswani et al. 2017 sec. 3.5; the UT adds one for the token's place and one for the step, eq. 4)."""
    j2 = torch.arange(0, d, 2, device=positions.device, dtype=torch.float32)  # (ceil(d/2),) the 2j
    angles = positions[..., None].float() / 10000 ** (j2 / d)  # (..., ceil(d/2))
    return rearrange(torch.stack([angles.sin(), angles.cos()], -1), "... j two -> ... (j two)")[..., :d]


class Block(nn.Module):
    """The shared step: pre-norm multi-head self-attention over the valid tokens, then a feed-forward net."""

    def __init__(self, config: UniversalTransformerConfig):
        super().__init__()
        d, self.heads = config.dim, config.attention_heads
        self.norm_read, self.norm_ffn = nn.LayerNorm(d), nn.LayerNorm(d)
        self.query, self.key, self.value, self.out = (nn.Linear(d, d) for _ in range(4))
        self.ffn = nn.Sequential(nn.Linear(d, config.ffn), nn.ReLU(), nn.Linear(config.ffn, d))
        self.scale = 1 / math.sqrt(d // config.attention_heads)  # scaled dot product (Vaswani et al. eq. 1)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (b, n, d), valid (b, n) the tokens that may be read -> the new x and the weights (b, h, n, n)."""
        h = self.heads
        y = self.norm_read(x)  # (b, n, d)
        split = lambda t: rearrange(t, "b n (h e) -> (b h) n e", h=h)
        read = address(split(self.query(y)), split(self.key(y)), split(self.value(y)), valid.repeat_interleave(h, 0),
                       score=lambda a, b: dot_score(a, b) * self.scale)
        x = x + self.out(rearrange(read.value, "(b h) n e -> b n (h e)", h=h))  # (b, n, d)
        x = x + self.ffn(self.norm_ffn(x))  # (b, n, d)
        return x, rearrange(read.weights, "(b h) n k -> b h n k", h=h)
