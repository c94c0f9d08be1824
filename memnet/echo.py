"""Training on the echo task with truncated backpropagation through time (NYU Deep Learning, week 6).

The epoch loop of `memnet.train` shuffles independent examples; echo is one long stream per
batch row whose hidden state must carry over from chunk to chunk. So it has this small loop:

    stream (b, N) --cut--> chunk 1 (b, T) | chunk 2 (b, T) | ...
    state = None
    for chunk:  outputs, state = model.steps(chunk, state)      outputs (b, T, h)
                loss = cross-entropy(model.head(outputs), target); step
                state = state.detach()                           gradients stop at the chunk's start

The model is `memnet.models.recurrent.Recurrent` (its `steps` and `head`); bits are read as ids
1 and 2, since id 0 is the padding word.
"""

import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from memnet.batches import IGNORE_INDEX, DataSizes
from memnet.models import build_model, model_config
from memnet.models.recurrent import Recurrent
from tasks.echo import chunks, echo_stream


@dataclass(frozen=True)
class EchoConfig:
    cell: str = "LSTM"  # "LSTM", "GRU" or "RNN": the model lstm, gru or rnn
    hidden: int = 4  # hidden units (the course uses 4)
    echo_step: int = 3  # delay of the echo in steps
    chunk: int = 20  # T: steps per truncated-BPTT chunk (the course uses 10-20)
    streams: int = 8  # b: independent streams read side by side
    steps: int = 10000  # N: stream length per epoch (a fresh stream every epoch)
    epochs: int = 3
    lr: float = 0.01  # Adam
    seed: int = 0
    test_steps: int = 10000  # length of the held-out stream (fixed seed), per row


def detach(state):
    return tuple(part.detach() for part in state) if isinstance(state, tuple) else state.detach()


def step_logits(model: Recurrent, bits: torch.Tensor, state):
    outputs, state = model.steps(bits + 1, state)  # (b, T, h); ids 1, 2 for bits 0, 1
    return model.head(outputs), state  # (b, T, 2)


@torch.no_grad()
def echo_accuracy(model: Recurrent, stream: dict[str, torch.Tensor], chunk: int) -> float:
    """Fraction of echoed bits right, reading the stream chunk by chunk with the state carried."""
    model.eval()
    state, right, counted = None, 0, 0
    for piece in chunks(stream, chunk):
        logits, state = step_logits(model, piece["input"], state)
        scored = piece["target"] != IGNORE_INDEX
        right += (logits.argmax(-1) == piece["target"])[scored].sum().item()
        counted += scored.sum().item()
    return right / counted


def train_echo(config: EchoConfig) -> dict:
    """Train one model on fresh streams each epoch; return test accuracy per epoch and the model."""
    torch.manual_seed(config.seed)
    name = config.cell.lower()
    sizes = DataSizes(vocab_size=3, num_classes=2)  # ids 1, 2 for the bits after PAD 0; classes: bits 0 and 1
    model = build_model(name, model_config(name, {"dim": 4, "hidden": config.hidden}), sizes)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    test = echo_stream(config.streams, config.test_steps, config.echo_step, torch.Generator().manual_seed(10_000 + config.echo_step))
    accuracy, started = [], time.perf_counter()
    for _ in range(config.epochs):
        model.train()
        state = None
        for piece in chunks(echo_stream(config.streams, config.steps, config.echo_step, generator), config.chunk):
            logits, state = step_logits(model, piece["input"], state)
            if (piece["target"] != IGNORE_INDEX).any():  # a first chunk shorter than the delay has nothing to echo yet
                loss = F.cross_entropy(logits.reshape(-1, 2), piece["target"].reshape(-1), ignore_index=IGNORE_INDEX)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            state = detach(state)  # truncated BPTT: carry the state, not its history
        accuracy.append(echo_accuracy(model, test, config.chunk))
    return {"config": asdict(config), "test_accuracy": accuracy, "seconds": round(time.perf_counter() - started, 2), "model": model}
