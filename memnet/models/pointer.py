"""A pointer over the source with coverage, and optionally a shift of the last alignment: attention
whose alignment carries past the lengths it was trained on (issue 32; docs/seq2seq-length.md).

- Vinyals, Fortunato & Jaitly 2015 ("Pointer Networks"): the output is the source symbol pointed at,
  so the alphabet and the length are not baked into an output layer.
- Graves, Wayne & Danihelka 2014 ("Neural Turing Machines", sec. 3.3.2, eq. 8): location addressing,
  the last weighting convolved with a learned shift distribution.
- Tu et al. 2016 ("Modeling Coverage for Neural Machine Translation"): coverage, how much of each
  source position the decoder has already used; here each position is output once.

Shape legend: b batch, s source positions, t decoder steps, d embedding size, V vocabulary,
k shifts (3: offsets -1, 0, +1).

    content    c_j  = u . E[x_j]                 one score per symbol: no recurrent encoder, so no state
                                                 that counts positions (a GRU's saturates past the trained lengths)
    open       o_1j = 1 on real positions; o_{i+1} = o_i less the one position step i output (coverage):
               in training the true symbol's, in eval the greedy one's (teacher forcing, as for any decoder);
               of duplicates, the one with the most weight
    location   l_ij = sum_k u_{i-1,j-k} shift_k  u_{i-1}: the position last output (one-hot), moved by a learned shift;
               a_0 puts half its weight on a virtual slot before the source and half on one after it,
               so a shift of +1 starts at the first symbol (copy) and -1 at the last (reverse)
    align      a_ij ∝ o_ij exp(c_j + λ log(l_ij + ε))     "shift": λ = softplus(learned) >= 0;
                                                         "pointer": λ = 0 (content and coverage only)
    output     p_i(v) = (1 - e_i) sum_j a_ij [x_j = v] + e_i end(v),   e_i = 1 once no position is open

Every term sees only differences between positions (softmax is shift-invariant) or one step's
neighbourhood, so nothing grows with the length. The end of the output is predicted from the
alignment having used up the source (e_i), not from a count, and `end` is a learned distribution
over the vocabulary (it learns to put its weight on EOS; the model never reads task code). The
shift and λ are single learned parameters, not functions of a decoder state: these tasks' rule
does not change from step to step, and a state that carries the step count is what broke length
generalisation. The decoder's only memory is which positions it has output (and where the last one was).
"""

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-6  # floor of the location term: a position the shift cannot reach scores λ log ε, not -inf
CLOSED = -1e30  # score of a used-up or padded position: finite, so a row with nothing open stays NaN-free
FLOOR = 1e-9  # smallest probability turned into a logit


def moved(last: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """NTM eq. 8 without wrap-around: last (b, s + 2) over [before, source, after] slots, shift (3,) over
    offsets -1, 0, +1 -> (b, s + 2), slot j gets sum_k last_{j-k} shift_k; weight moved off either end is lost."""
    left = F.pad(last[:, 1:], (0, 1))  # (b, s + 2) slot j holds last_{j+1}: moved by -1
    right = F.pad(last[:, :-1], (1, 0))  # (b, s + 2) slot j holds last_{j-1}: moved by +1
    return shift[0] * left + shift[1] * last + shift[2] * right


def start(mask: torch.Tensor) -> torch.Tensor:
    """a_0 over [before, source, after] slots (b, s + 2): half before the first symbol, half after the last."""
    slots = torch.arange(mask.shape[1] + 2, device=mask.device)  # (s + 2,)
    after = mask.sum(1, keepdim=True) + 1  # (b, 1) the slot just past each source
    return 0.5 * ((slots == 0) | (slots == after)).float()  # (b, s + 2)


def align_step(content: torch.Tensor, open_: torch.Tensor, location: torch.Tensor | None,
               strength: torch.Tensor | float) -> torch.Tensor:
    """One alignment: content (b, s), open positions (b, s) bool, location l (b, s) or None -> a (b, s),
    the softmax of c + λ log(l + ε) over the open positions; a row with nothing open reads nothing.

    Not `memnet.addressing.address`: its -inf fill makes a row with no valid slot NaN before the final zeroing,
    which is harmless where every row has a slot, but here every sequence's end step has none, and the NaN
    would reach the gradient."""
    scores = content if location is None else content + strength * torch.log(location + EPS)  # (b, s)
    return torch.where(open_, scores, CLOSED).softmax(-1) * open_  # (b, s)


class Pointer(nn.Module):
    """The decoder of `Seq2Seq` with attention "pointer" or "shift" (see the module docstring)."""

    def __init__(self, vocab_size: int, dim: int, shift: bool):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.content = nn.Linear(dim, 1, bias=False)  # u
        self.end = nn.Parameter(torch.zeros(vocab_size))  # logits of what is output once the source is used up
        self.shift = nn.Parameter(torch.zeros(3)) if shift else None  # logits over offsets -1, 0, +1
        self.strength = nn.Parameter(torch.tensor(0.5413)) if shift else None  # softplus(0.5413) = 1: λ starts at 1

    def forward(self, source: torch.Tensor, mask: torch.Tensor, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """source (b, s), mask (b, s), decoder inputs (b, t) -> logits (b, t, V) (log-probabilities), alignment (b, t, s).

        The symbol output at step i uses up one position holding it: the true one in training (teacher
        forcing, decoder_input[:, i + 1]), the greedy prediction in eval mode, as in `Seq2Seq`."""
        content = self.content(self.embed(source)).squeeze(-1)  # (b, s)
        open_ = mask.clone()  # (b, s) positions not output yet
        last = start(mask)  # (b, s + 2)
        end = self.end.softmax(0)  # (V,)
        logits, alignment = [], []
        for i in range(inputs.shape[1]):
            used_up = (~open_.any(1, keepdim=True)).float()  # (b, 1) e_i
            location = moved(last, self.shift.softmax(0))[:, 1:-1] if self.shift is not None else None  # (b, s)
            weights = align_step(content, open_, location, F.softplus(self.strength) if self.shift is not None else 0.0)
            pointed = torch.zeros(len(source), len(end), device=source.device).scatter_add(1, source, weights)  # (b, V)
            logits.append(torch.log((1 - used_up) * pointed + used_up * end + FLOOR))  # (b, V)
            alignment.append(weights)
            if i + 1 < inputs.shape[1]:
                output = inputs[:, i + 1] if self.training else logits[-1].argmax(-1)  # (b,)
                used = consumed(weights.detach(), open_ & (source == output[:, None]))  # (b, s) one-hot, or none
                open_ = open_ & (used == 0)
                last = F.pad(used, (1, 1))  # (b, s + 2)
        return torch.stack(logits, 1), torch.stack(alignment, 1)  # (b, t, V), (b, t, s)


def consumed(weights: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """The one position an output symbol uses up (b, s): of the open positions that hold it, candidates (b, s),
    the one with the most weight (weights (b, s); a tie goes to the first), so that duplicates are used one at
    a time; none where no open position holds it (an error, or the end). Coverage is bookkeeping, as a
    decoder's previous symbol is: no gradient flows through it."""
    pick = weights.masked_fill(~candidates, -1.0).argmax(1)  # (b,)
    return F.one_hot(pick, weights.shape[1]).float() * candidates.any(1, keepdim=True)  # (b, s)
