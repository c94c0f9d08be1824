"""Gated End-to-End Memory Networks (Liu and Perez, EACL 2017), sec. 3: GMemN2N.

Shape legend: b batch, m memory slots (sentences), w words per sentence, d embedding size, k hops.

MemN2N (memnet.models.memn2n: its encodings, temporal encoding, empty memories and the official
release's switches all apply) with one change: the controller's update after each hop is gated, as
a highway network gates a layer (Srivastava et al. 2015). With o^k the read of hop k,

    T^k(u^k) = sigmoid(W_T^k u^k + b_T^k)                  # (b, d) how much of the read to let in
    u^(k+1)  = o^k * T^k(u^k) + u^k * (1 - T^k(u^k))       # instead of MemN2N's u^k + o^k

The paper tries two tyings of the gates' parameters: one (W_T, b_T) shared by every hop ("global")
and one per hop ("hop", which it finds better); `gate_tying` picks. The embeddings keep MemN2N's
adjacent tying (A^(k+1) = C^k, B = A^1, W^T = C^K); the gate replaces the update itself, so
layer-wise tying's H u + o has no gated form here and is refused.

Attention comes back as MemN2N's, (b, k, m) per hop over the story's sentences, so `memnet inspect`,
the supporting-fact report and `memnet serve` read it unchanged.
"""

from typing import Literal

import torch
from pydantic import ConfigDict
from pydantic.dataclasses import dataclass
from torch import nn

from memnet.batches import DataSizes
from memnet.models.memn2n import MemN2N, MemN2NConfig


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class GatedMemN2NConfig(MemN2NConfig):
    gate_tying: Literal["hop", "global"] = "hop"  # "hop": a gate (W_T^k, b_T^k) per hop; "global": one for all (sec. 3)
    gate_bias: float = 0.0  # b_T's initial value; 0 starts every gate at 1/2. A negative value starts nearer
    # MemN2N's carry of u (a highway network's advice); W_T starts from N(0, init_std) like every other weight

    def __post_init__(self):
        super().__post_init__()
        if self.tying != "adjacent":
            raise ValueError(f"the gate replaces MemN2N's update u + o: gmemn2n needs tying='adjacent', got tying={self.tying!r}")


class GatedMemN2N(MemN2N):
    def __init__(self, config: GatedMemN2NConfig, sizes: DataSizes):
        super().__init__(config, sizes)
        gates = config.hops if config.gate_tying == "hop" else 1
        self.gates = nn.ModuleList(nn.Linear(config.dim, config.dim) for _ in range(gates))  # W_T^k u + b_T^k
        for gate in self.gates:
            nn.init.normal_(gate.weight, std=config.init_std)
            nn.init.constant_(gate.bias, config.gate_bias)

    def update(self, hop: int, u: torch.Tensor, read: torch.Tensor) -> torch.Tensor:
        """u^(k+1) = o^k * T^k(u^k) + u^k * (1 - T^k(u^k)), T^k(u) = sigmoid(W_T^k u + b_T^k). (b, d)"""
        gate = torch.sigmoid(self.gates[hop if self.config.gate_tying == "hop" else 0](u))  # (b, d)
        return read * gate + u * (1 - gate)  # (b, d)
