"""The one thing every model returns, so the training loop never asks which model it holds."""

from typing import NamedTuple

import torch


class Output(NamedTuple):
    logits: torch.Tensor  # (b, classes) for QA and classification; (b, t, classes) for seq2seq
    attention: torch.Tensor | None = None  # (b, hops, m) over story sentences; (b, t, s) seq2seq alignment
    # (b,) an extra loss term per example that the model asks for (the Universal Transformer's ponder cost): the
    # training loop adds its sum over the rows that have a target to the summed cross-entropy (memnet.loop.loss_and_wrong,
    # memnet.population.member_loss); None: the loss is the cross-entropy alone
    penalty: torch.Tensor | None = None
    steps: torch.Tensor | None = None  # (b, m) computation steps each sentence took (adaptive halting), 0 on padding
