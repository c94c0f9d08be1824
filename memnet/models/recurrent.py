"""Recurrent baselines: an LSTM, GRU or plain RNN reads the whole input as one sequence.

The LSTM baseline of End-To-End Memory Networks (Sukhbaatar et al. 2015, sec. 4 "Baselines", Table 1,
after Weston et al. 2015): the story's words in order, then the question's, are one sequence;
the answer comes from the final hidden state. There is no memory to address, so the output has
no attention. The same class classifies plain sequences (temporal order, Hochreiter &
Schmidhuber 1997 exp. 6a) and is the cell of the echo task (`memnet.echo`).

Shape legend: b batch, m memory slots, w words per sentence, q words per question, L sequence
length, d embedding size, h hidden size, C classes.

    bAbI batch  story (b, m, w) + memory_mask (b, m) + query (b, q)
                 -> valid slots' words, padding removed, then the question: tokens (b, L), lengths (b,)
    sequences   input (b, L) + lengths (b,)   (tasks.temporal_order)
    then        embed (b, L, d) -> packed cell -> final h (b, h) -> logits (b, C)

Models `lstm`, `gru`, `rnn` differ only in `cell` (a torch.nn class read with getattr, as in
pytorch/examples word_language_model). The loop's defaults (SGD, lr 0.01 on a summed loss) are
MemN2N's; these train with Adam. Flags we ran (results/sequences/ for temporal order):

    memnet train --model lstm --task babi:1 --optimizer adam --lr 0.001 --epochs 20      # ~50% test error, as the paper's LSTM
    memnet train --model lstm --task temporal:hard --optimizer adam --lr 0.01 --epochs 10 -o hidden=16 -o chrono=110

`chrono` (an LSTM's gate initialisation for dependencies up to that many steps) is what lets
the LSTM learn the long temporal-order levels in a few epochs; with forget bias 1 only, 1 of 3
seeds left chance level on HARD within 10 epochs and NIGHTMARE none (results/sequences, `init_gates`).
"""

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from memnet.models.output import Output

CELLS = ("LSTM", "GRU", "RNN")


@dataclass(frozen=True)
class RecurrentConfig:
    vocab_size: int  # input words, PAD = 0 included
    num_classes: int  # answer classes (bAbI: the vocabulary) or sequence classes
    cell: str = "LSTM"  # "LSTM", "GRU" or "RNN" (Elman, tanh): the torch.nn class used
    embed_dim: int = 50  # word embedding size d
    hidden: int = 100  # hidden units h per layer (the paper does not give its LSTM's size)
    layers: int = 1  # stacked recurrent layers
    dropout: float = 0.0  # on embeddings, between layers and before the classifier
    forget_bias: float = 1.0  # LSTM only: initial forget-gate bias (torch's own init is ~0)
    chrono: int = 0  # LSTM only: chrono init for dependencies up to this many steps; 0 = off (see init_gates)

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if self.layers < 1 or self.hidden < 1:
            raise ValueError(f"layers and hidden must be at least 1, got {self.layers} and {self.hidden}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.chrono and (self.cell != "LSTM" or self.chrono < 3):
            raise ValueError(f"chrono applies to the LSTM cell and needs a horizon of at least 3 steps, got {self.chrono} with {self.cell}")


# One config class per registered name, so `--model gru` needs no `--cell` (MODELS maps name -> class).
@dataclass(frozen=True)
class LSTMConfig(RecurrentConfig):
    cell: str = "LSTM"


@dataclass(frozen=True)
class GRUConfig(RecurrentConfig):
    cell: str = "GRU"


@dataclass(frozen=True)
class RNNConfig(RecurrentConfig):
    cell: str = "RNN"


def babi_sequence(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The words of a bAbI batch's valid memory slots in order, then the question's, padding removed.

    Returns tokens (b, L), padded with 0 after each row's end, and lengths (b,).
    """
    story = batch["story"].masked_fill(~batch["memory_mask"][..., None], 0)  # (b, m, w) empty slots read nothing
    tokens = torch.cat([rearrange(story, "b m w -> b (m w)"), batch["query"]], 1)  # (b, m*w + q)
    keep = tokens != 0  # (b, m*w + q)
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # real words first, in reading order
    lengths = keep.sum(1)  # (b,)
    return tokens.gather(1, order)[:, : max(1, int(lengths.max()))], lengths  # (b, L), (b,)


def init_gates(lstm: nn.LSTM, config: RecurrentConfig) -> None:
    """Forget-gate biases that make memory (and its gradient) last from the first update.

    `chrono` = T >= 3: b_f ~ log(U(1, T - 1)), b_i = -b_f (Tallec & Ollivier 2018, "Can recurrent
    neural networks warp time?", sec. 3), for dependencies up to ~T steps long. Otherwise b_f =
    `forget_bias` (Gers et al. 2000; Jozefowicz et al. 2015, sec. 2.2). torch orders gates i, f, g, o
    and has two bias vectors per layer; the values go in bias_ih, and bias_hh's gate slices are zeroed.
    """
    h = config.hidden
    input_gate, forget_gate = slice(0, h), slice(h, 2 * h)
    for name, bias in lstm.named_parameters():
        if not name.startswith("bias"):
            continue
        with torch.no_grad():
            if name.startswith("bias_hh"):
                bias[forget_gate] = 0
                if config.chrono:
                    bias[input_gate] = 0
            elif config.chrono:
                bias[forget_gate] = torch.log(torch.rand(h) * (config.chrono - 2) + 1)
                bias[input_gate] = -bias[forget_gate]
            else:
                bias[forget_gate] = config.forget_bias


class Recurrent(nn.Module):
    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=0)
        self.rnn = getattr(nn, config.cell)(config.embed_dim, config.hidden, num_layers=config.layers, batch_first=True,
                                            dropout=config.dropout if config.layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.num_classes)
        if config.cell == "LSTM":
            init_gates(self.rnn, config)

    def steps(self, tokens: torch.Tensor, state=None):
        """Every step's top-layer hidden state (b, L, h) and the final state, from `state` (None: zeros).

        For readers of the hidden units (the benchmark's heatmap) and for truncated BPTT (echo).
        """
        return self.rnn(self.drop(self.embed(tokens)), state)

    def forward(self, batch: dict[str, torch.Tensor]) -> Output:
        if "input" in batch:
            tokens, lengths = batch["input"], batch["lengths"]  # (b, L), (b,)
        else:
            tokens, lengths = babi_sequence(batch)
        x = self.drop(self.embed(tokens))  # (b, L, d)
        # Packing stops each row at its own end, so the final state never reads padding.
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        h = state[0] if self.config.cell == "LSTM" else state  # (layers, b, h); an LSTM's state is (h, c)
        return Output(self.head(self.drop(h[-1])))  # (b, C)
