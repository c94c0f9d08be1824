"""Recurrent baselines: an LSTM, GRU or plain RNN reads the whole input as one sequence.

The LSTM baseline of End-To-End Memory Networks (Sukhbaatar et al. 2015, sec. 4 "Baselines", Table 1,
after Weston et al. 2015): the story's words in order, then the question's, are one sequence;
the answer comes from the final hidden state. There is no memory to address, so the output has
no attention. The same class classifies plain sequences (temporal order, Hochreiter &
Schmidhuber 1997 exp. 6a) and is the cell of the echo task (`memnet.echo`).

Shape legend: b batch, m memory slots, w words per sentence, q words per question, L sequence
length, d embedding size, h hidden size, C classes.

    StoryBatch     story (b, m, w) + memory_mask (b, m) + query (b, q)
                    -> valid slots' words, padding removed, then the question: tokens (b, L), lengths (b,)
    SequenceBatch  input (b, L) + lengths (b,)   (tasks.temporal_order)
    then           embed (b, L, d) -> packed cell -> final h (b, h) -> logits (b, C)

Both batch types hand over (tokens, lengths) through `batch.sequence()`, so the model reads either
without asking which it holds. Models `lstm`, `gru`, `rnn` differ only in `cell` (a torch.nn class
read with getattr, as in pytorch/examples word_language_model), fixed by the registered name: each
has its own config class, so `--model gru` cannot be given an LSTM cell. The loop's defaults (SGD,
lr 0.01 on a summed loss) are MemN2N's; these train with Adam. Flags we ran (results/sequences/
for temporal order):

    memnet train --model lstm --task babi:1 --optimizer adam --lr 0.001 --epochs 20      # ~50% test error, as the paper's LSTM
    memnet train --model lstm --task temporal:hard --optimizer adam --lr 0.01 --epochs 10 -o hidden=16 -o chrono=110

`chrono` (an LSTM's gate initialisation for dependencies up to that many steps) is what lets
the LSTM learn the long temporal-order levels in a few epochs; with forget bias 1 only, none of 3
seeds left chance level on HARD within 10 epochs, nor on NIGHTMARE (results/sequences, `init_gates`).
"""

from typing import Annotated, ClassVar

import torch
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from memnet.batches import DataSizes, SequenceBatch, StoryBatch
from memnet.models.output import Output


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class RecurrentConfig:
    cell: ClassVar[str]  # "LSTM", "GRU" or "RNN" (Elman, tanh): the torch.nn class, fixed by each subclass below
    dim: Annotated[int, Field(ge=1)] = 50  # word embedding size d
    hidden: Annotated[int, Field(ge=1)] = 100  # hidden units h per layer (the paper does not give its LSTM's size)
    layers: Annotated[int, Field(ge=1)] = 1  # stacked recurrent layers
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0  # on embeddings, between layers and before the classifier
    forget_bias: float = 1.0  # LSTM only: initial forget-gate bias (torch's own init is ~0)
    chrono: Annotated[int, Field(ge=0)] = 0  # LSTM only: chrono init for dependencies up to this many steps
    # (at least 3); 0 = off (see init_gates)

    def __post_init__(self):
        if self.chrono and self.cell != "LSTM":
            raise ValueError(f"chrono applies to the LSTM cell only (model lstm); this model's cell is {self.cell}")
        if 0 < self.chrono < 3:
            raise ValueError(f"chrono needs a horizon of at least 3 steps (or 0 for off), got chrono={self.chrono}")


# One config class per registered name (MODELS maps name -> class); the cell is not an option.
@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class LSTMConfig(RecurrentConfig):
    cell: ClassVar[str] = "LSTM"


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class GRUConfig(RecurrentConfig):
    cell: ClassVar[str] = "GRU"


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class RNNConfig(RecurrentConfig):
    cell: ClassVar[str] = "RNN"


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
    def __init__(self, config: RecurrentConfig, sizes: DataSizes):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(sizes.vocab_size, config.dim, padding_idx=0)
        self.rnn = getattr(nn, config.cell)(config.dim, config.hidden, num_layers=config.layers, batch_first=True,
                                            dropout=config.dropout if config.layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, sizes.num_classes)
        if config.cell == "LSTM":
            init_gates(self.rnn, config)

    def steps(self, tokens: torch.Tensor, state=None):
        """Every step's top-layer hidden state (b, L, h) and the final state, from `state` (None: zeros).

        For readers of the hidden units (the benchmark's heatmap) and for truncated BPTT (echo).
        """
        return self.rnn(self.drop(self.embed(tokens)), state)

    def forward(self, batch: StoryBatch | SequenceBatch) -> Output:
        tokens, lengths = batch.sequence()  # (b, L), (b,)
        x = self.drop(self.embed(tokens))  # (b, L, d)
        # Packing stops each row at its own end, so the final state never reads padding.
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        h = state[0] if self.config.cell == "LSTM" else state  # (layers, b, h); an LSTM's state is (h, c)
        return Output(self.head(self.drop(h[-1])))  # (b, C)
