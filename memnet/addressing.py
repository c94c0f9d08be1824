"""Soft addressing: the one operation behind memory networks and attention.

Score queries against keys, normalise over the valid slots, read the weighted sum of values,
and return the weights with the read. MemN2N hops, the attentive reader and the seq2seq decoder
all call `address`.

Shapes: b batch, q queries per example, m slots, d key size, e value size.
"""

from typing import Callable, NamedTuple

import torch
from einops import einsum

Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (b, q, d), (b, m, d) -> (b, q, m)


class Read(NamedTuple):
    value: torch.Tensor  # (b, q, e) weighted sum of values
    weights: torch.Tensor  # (b, q, m) attention over slots; exactly 0 on padding; with empty slots, sums to 1 - their share


def dot_score(query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Inner-product score (MemN2N eq. 1; Luong et al. 2015 'dot')."""
    return einsum(query, keys, "b q d, b m d -> b q m")


def address(query, keys, values, mask=None, *, empty=None, score: Score = dot_score,
            softmax: bool | torch.Tensor = True) -> Read:
    """Read `values` at the slots whose `keys` match `query`.

    query (b, q, d), keys (b, m, d), values (b, m, e), mask (b, m) True on valid slots.
    `empty` (b,) counts further slots that hold nothing (zero key and value: memory not yet written).
    They score 0 and share the softmax, so a read can land on nothing, which lets a yes/no question
    answer "no" when no sentence matches; they add nothing to the value and their weight is not returned.
    With `softmax=False` the scores themselves are the weights (MemN2N's linear start, sec. 4.2);
    padded slots get exactly zero weight either way. `softmax` may be a bool tensor, so that the
    members of a population (memnet.population) each have their own.
    """
    scores = score(query, keys)  # (b, q, m)
    valid = None if mask is None else mask[:, None, :]  # (b, 1, m)
    if isinstance(softmax, torch.Tensor):  # one switch per member of a population
        weights = torch.where(softmax, normalised(scores, valid, empty), linear(scores, valid))
    else:
        weights = normalised(scores, valid, empty) if softmax else linear(scores, valid)
    return Read(einsum(weights, values, "b q m, b m e -> b q e"), weights)


def normalised(scores: torch.Tensor, valid: torch.Tensor | None, empty: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the valid slots and `empty` (b,) empty ones; padded slots get exactly 0."""
    if valid is not None:
        scores = scores.masked_fill(~valid, float("-inf"))
    if empty is not None:
        # n empty slots scoring 0 weigh as much as one slot scoring log n; log 0 = -inf: none
        nothing = empty.float().log()[:, None, None].expand(*scores.shape[:2], 1)  # (b, q, 1)
        weights = torch.cat([scores, nothing], -1).softmax(-1)[..., :-1]
    else:
        weights = scores.softmax(-1)
    return weights if valid is None else weights.masked_fill(~valid, 0.0)  # a row with no valid slot reads nothing


def linear(scores: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """The scores themselves (linear start), 0 on padded slots."""
    return scores if valid is None else scores.masked_fill(~valid, 0.0)
