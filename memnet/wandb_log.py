"""wandb logging of a training run: metrics per epoch and a few attention maps as images.

Imported only when a run asks for wandb (it is slow to import). Runs are offline unless the user
set WANDB_MODE (or logged in and set it to online): nothing reaches the network by default.
"""

import dataclasses
import os

import numpy as np
import torch

from memnet.batches import Batch
from memnet.models.output import attention_row

ATTENTION_EXAMPLES = 3  # validation examples whose attention is logged after every epoch
PIXELS = 12  # each weight drawn as a PIXELS x PIXELS square, so small maps stay visible


def start(out, model_name: str, model_config, train_config, task: str):
    import wandb

    os.environ.setdefault("WANDB_MODE", "offline")
    group = os.environ.get("WANDB_RUN_GROUP", task)  # memnet bench puts all its runs in one group
    return wandb.init(project="memnet", group=group, name=str(out), dir=str(out), reinit="finish_previous",
                      config={"model": model_name, "task": task, **dataclasses.asdict(model_config), **dataclasses.asdict(train_config)})


@torch.no_grad()
def log_epoch(run, line: dict, model, valid: Batch) -> None:
    """The epoch's metrics, and the attention of the first validation examples (hops x slots, or t x s; a row is what
    the model names it, memnet.models.output)."""
    import wandb

    model.eval()
    attention = model(valid.rows(slice(0, ATTENTION_EXAMPLES))).attention
    images = []
    if attention is not None:
        caption = f"a row per {attention_row(model)}; darker = more weight"
        for example in attention.float().cpu().numpy():  # (hops, m) or (t, s)
            pixels = np.kron(example, np.ones((PIXELS, PIXELS)))
            images.append(wandb.Image((255 * (1 - pixels.clip(0, 1))).astype(np.uint8), caption=caption))
    run.log({**line, **({"attention": images} if images else {})}, step=line["epoch"])
