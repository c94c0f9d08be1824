"""An encoder-decoder with attention: Bahdanau, Cho & Bengio 2015 ("Neural Machine Translation by
Jointly Learning to Align and Translate") and Luong, Pham & Manning 2015 ("Effective Approaches to
Attention-based Neural Machine Translation").

Shape legend: b batch, s source positions, t decoder steps, d embedding size, h hidden size,
V vocabulary (source and target share one).

    encoder   source (b, s) -> GRU/LSTM (optionally bidirectional, h/2 each way) -> memory (b, s, h)
              its final state (both directions concatenated) starts the decoder
    step i    x_i = [embed(y_{i-1}); h~_{i-1}]                     input feeding (Luong sec. 3.3)
              h_i = cell(x_i, state)
              c_i, a_i = address(h_i, memory, source_mask)         a_i (b, s), c_i (b, h)
              h~_i = tanh(W_c [c_i; h_i]),  logits_i = W_o h~_i    (Luong eq. 5-6)
    attention "additive": score = v^T tanh(W h_i + U m_j)  (Bahdanau eq. (6), the "concat" score of Luong)
              "dot":      score = h_i . m_j                (Luong eq. 8)
              "none":     no read, h~_i = tanh(W_c h_i): the whole source passes through the
                          encoder's final state (Sutskever et al. 2014; Cho et al. 2014)
              "pointer":  no encoder RNN, no decoder state: the output is the source symbol pointed at,
                          chosen by its content and what is left of each position (memnet.models.pointer)
              "shift":    the pointer, plus the last alignment moved by a learned shift (NTM location
                          addressing), so that copy and reverse have a position to go by; the setting that
                          holds past the trained lengths (preset seq2seq-length, docs/seq2seq-length.md)

The step order (state, then attention, then output) is Luong's for every score; only the score
function is Bahdanau's. In training (model.training) the decoder reads the true previous symbol
(teacher forcing); in eval mode it reads its own greedy prediction, for as many steps as
`decoder_input` has, so `memnet.train.evaluate` measures exact match under greedy decoding.
It reads a `Seq2SeqBatch`: source, source_mask, decoder_input (BOS first), target (see tasks.seq2seq_tasks).

    memnet train --model seq2seq --task reverse --optimizer adam --lr 0.003 --lr-halve-every 3 --epochs 8 --batch-size 64
"""

from typing import Annotated, ClassVar, Literal

import torch
from einops import rearrange
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from memnet.addressing import address, dot_score
from memnet.batches import DataSizes, Seq2SeqBatch
from memnet.models.output import Output
from memnet.models.pointer import Pointer

POINTERS = ("pointer", "shift")  # attentions decoded by memnet.models.pointer: no recurrent parts (cell, hidden, bidirectional)


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class Seq2SeqConfig:
    cell: Literal["GRU", "LSTM"] = "GRU"  # the torch.nn cell of encoder and decoder alike
    dim: Annotated[int, Field(ge=1)] = 32  # symbol embedding size d, shared by encoder and decoder
    hidden: Annotated[int, Field(ge=1)] = 128  # decoder state size h; the encoder's outputs have this size too
    bidirectional: bool = False  # encoder reads both ways with h/2 units each (OpenNMT's "brnn")
    attention: Literal["additive", "dot", "none", "pointer", "shift"] = "additive"  # "additive" (Bahdanau), "dot"
    # (Luong), "none"; "pointer" (Vinyals et al. 2015, with coverage) or "shift" (the pointer with NTM location addressing)

    def __post_init__(self):
        recurrent = {"cell": "GRU", "hidden": 128, "bidirectional": False}  # the defaults above: options of the GRU parts
        changed = [name for name, default in recurrent.items() if getattr(self, name) != default]
        if self.attention in POINTERS and changed:
            raise ValueError(f"attention={self.attention} has no recurrent encoder or decoder, so "
                             f"{', '.join(changed)} {'does' if len(changed) == 1 else 'do'} not apply; leave "
                             f"{'it' if len(changed) == 1 else 'them'} at the default")
        if self.bidirectional and self.hidden % 2:
            raise ValueError(f"a bidirectional encoder splits hidden in two: bidirectional=True needs an even "
                             f"hidden, got hidden={self.hidden} (odd)")


class Additive(nn.Module):
    """Bahdanau's score v^T tanh(W q + U k). `keys` computes U k once per source, not once per step."""

    def __init__(self, dim: int):
        super().__init__()
        self.W = nn.Linear(dim, dim, bias=False)
        self.U = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, 1, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.U(memory)  # (b, s, h)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """A `Score`: query (b, q, h), projected keys (b, s, h) -> (b, q, s)."""
        return self.v(torch.tanh(self.W(query)[:, :, None] + keys[:, None])).squeeze(-1)


class Seq2Seq(nn.Module):
    ATTENTION_ROW: ClassVar[str] = "decoder step"  # a row of Output.attention is one output symbol's alignment

    def __init__(self, config: Seq2SeqConfig, sizes: DataSizes):
        super().__init__()
        self.config = config
        V, d, h = sizes.vocab_size, config.dim, config.hidden
        if config.attention in POINTERS:  # a decoder of its own; none of the recurrent parts below
            self.pointer = Pointer(V, d, shift=config.attention == "shift")
            return
        self.pointer = None
        self.embed = nn.Embedding(V, d, padding_idx=0)
        self.encoder = getattr(nn, config.cell)(d, h // 2 if config.bidirectional else h, batch_first=True,
                                                bidirectional=config.bidirectional)
        self.decoder = getattr(nn, config.cell + "Cell")(d + h, h)  # reads [y_{i-1}; h~_{i-1}]
        self.additive = Additive(h) if config.attention == "additive" else None
        self.combine = nn.Linear(h if config.attention == "none" else 2 * h, h)  # W_c
        self.out = nn.Linear(h, V)  # W_o

    def encode(self, source: torch.Tensor, mask: torch.Tensor):
        """memory (b, s, h), zero on padding, and the decoder's first state."""
        packed = pack_padded_sequence(self.embed(source), mask.sum(1).clamp(min=1).cpu(), batch_first=True,
                                      enforce_sorted=False)
        memory, final = self.encoder(packed)
        memory, _ = pad_packed_sequence(memory, batch_first=True, total_length=source.shape[1])  # (b, s, h)

        def join(state):  # (directions, b, h/dir) -> (b, h): forward and backward final states side by side
            return rearrange(state, "dir b h -> b (dir h)")

        state = tuple(join(part) for part in final) if self.config.cell == "LSTM" else join(final)
        return memory, state

    def forward(self, batch: Seq2SeqBatch) -> Output:
        source, mask, inputs = batch.source, batch.source_mask, batch.decoder_input  # (b, s), (b, s), (b, t)
        if self.pointer is not None:
            return Output(*self.pointer(source, mask, inputs))  # (b, t, V), (b, t, s)
        memory, state = self.encode(source, mask)
        keys = self.additive.keys(memory) if self.additive is not None else memory  # (b, s, h)
        score = self.additive if self.additive is not None else dot_score
        feed = memory.new_zeros(len(source), self.config.hidden)  # h~ of the step before the first
        logits, attention = [], []
        for i in range(inputs.shape[1]):
            # teacher forcing in training; greedy decoding in eval (the first input is always BOS)
            token = inputs[:, i] if self.training or i == 0 else logits[-1].argmax(-1)  # (b,)
            state = self.decoder(torch.cat([self.embed(token), feed], -1), state)
            h = state[0] if self.config.cell == "LSTM" else state  # (b, h)
            if self.config.attention == "none":
                feed = torch.tanh(self.combine(h))  # (b, h)
            else:
                read = address(h[:, None], keys, memory, mask, score=score)  # value (b, 1, h), weights (b, 1, s)
                feed = torch.tanh(self.combine(torch.cat([read.value[:, 0], h], -1)))  # (b, h)
                attention.append(read.weights[:, 0])  # (b, s)
            logits.append(self.out(feed))  # (b, V)
        return Output(torch.stack(logits, 1), torch.stack(attention, 1) if attention else None)  # (b, t, V), (b, t, s)
