"""The one thing every model returns, so the training loop never asks which model it holds."""

from typing import NamedTuple

import torch


class Output(NamedTuple):
    logits: torch.Tensor  # (b, classes) for QA and classification; (b, t, classes) for seq2seq
    attention: torch.Tensor | None = None  # (b, hops, m) over story sentences; (b, t, s) seq2seq alignment
