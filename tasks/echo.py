"""The echo task (NYU Deep Learning, week 6): repeat a random bit stream `echo_step` steps late.

A batch is `b` independent streams of `steps` bits; the target at step i is the input at step
i - echo_step. One stream with echo_step 3:

    input   [1, 0, 0, 1, 1, 0, 1, ...]          (b, N) bits
    target  [-100, -100, -100, 1, 0, 0, 1, ...] (b, N) the input 3 steps earlier; -100 (IGNORE_INDEX)
                                                 where there is nothing to echo yet

The stream is cut into chunks of T steps that a recurrent model reads in order, carrying its
hidden state across chunks and detaching it (truncated backpropagation through time). That does
not fit the epoch loop over independent examples, so echo is not in `tasks.registry.TASKS`; it
trains with `memnet.echo.train_echo`.
"""

import torch

from memnet.batches import IGNORE_INDEX


def echo_stream(batch: int, steps: int, echo_step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """`batch` random bit streams of `steps` bits and their echoes (see the module docstring)."""
    if not 0 < echo_step < steps:
        raise ValueError(f"echo_step must be between 1 and steps - 1 = {steps - 1}, got {echo_step}")
    bits = torch.randint(0, 2, (batch, steps), generator=generator)  # (b, N)
    target = torch.full_like(bits, IGNORE_INDEX)
    target[:, echo_step:] = bits[:, :-echo_step]
    return {"input": bits, "target": target}


def chunks(stream: dict[str, torch.Tensor], size: int) -> list[dict[str, torch.Tensor]]:
    """Cut (b, N) streams into consecutive (b, size) chunks, in reading order; N must divide evenly."""
    steps = stream["input"].shape[1]
    if steps % size:
        raise ValueError(f"a stream of {steps} steps does not cut into chunks of {size}")
    return [{key: value[:, start : start + size] for key, value in stream.items()} for start in range(0, steps, size)]
