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


# What one row of a model's `Output.attention` over story sentences is, for the views that show it (memnet.inspection's
# terminal, HTML and PNG views and support report, memnet.serve, memnet.wandb_log). A model class may set
#     ATTENTION_ROW = "hop"          the word that names a row: "hop" (MemN2N), "layer", "step", ...
#     ATTENTION_SUMS_TO_ONE = True   a row is a distribution over the sentences and MemN2N's empty memories, so what it
#                                    leaves of 1 is the weight on the empty memories (a read of nothing), shown as a row
#                                    of its own. False: a row is something else (gates in [0, 1] per sentence, as a
#                                    query-reduction network's update gates per layer, or weights that also fall outside
#                                    the sentences): no empty share is computed or shown, and the support report takes
#                                    a row's most-weighted sentence alone
# Absent, they are "hop" and True. The views read them here, from the model, never from its name.

def attention_row(model) -> str:
    """The word naming one row of `model`'s attention ("hop" unless its class says otherwise)."""
    return getattr(model, "ATTENTION_ROW", "hop")


def attention_sums_to_one(model) -> bool:
    """Whether `model`'s attention rows are distributions over the sentences and MemN2N's empty memories."""
    return getattr(model, "ATTENTION_SUMS_TO_ONE", True)
