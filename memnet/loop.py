"""The training loop's parts that a lone run (memnet.train) and a population (memnet.population) share: the loss,
the learning-rate schedule and linear start, the optimizer, the batch order, gradient clipping as the official release
measures it, and the summary of a finished run. Neither a run's folder nor its records live here.

The schedule is the paper's (Sukhbaatar et al. 2015, sec. 4.2): SGD, lr 0.01 halved every 25 epochs, batch 32,
gradient norm clipped at 40 per weight matrix; optional linear start (softmax removed, lr 0.005, then the full
schedule from the top, as the official release does). Where the release's code does otherwise (its halving epoch,
batches drawn with replacement, clipping on the spectral norm), a TrainSpec switch does it too (preset `release`).
"""

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from memnet.batches import IGNORE_INDEX, Batch
from memnet.models.output import Output
from memnet.records import environment
from memnet.spec import TrainSpec


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


def divergence(out: Path, problem: str, epoch: int, seed: int) -> str:
    """What a run that diverged says, alone or in a population: where, when, and what to try."""
    return f"{out}: {problem} at epoch {epoch + 1} (seed {seed}); try a lower --lr or clipping"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but PyTorch sees no GPU; use --device auto or cpu")
    return torch.device(name)


def loss_and_wrong(out: Output, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of a model's output summed over the batch (with the model's `penalty`, `with_penalty`), and per
    example whether any predicted position is wrong.

    Summed, not averaged: the paper's lr 0.01 and clipping at 40 are for the summed loss of the
    official release; averaging would divide every step by the batch size.
    """
    logits = out.logits
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum")
    wrong = (logits.argmax(-1) != target) & (target != IGNORE_INDEX)  # (b,) or (b, t)
    return with_penalty(loss, out.penalty, target), wrong.reshape(len(target), -1).any(1)  # (), (b,)


def with_penalty(loss: torch.Tensor, penalty: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor:
    """`loss` plus the model's extra per-example term (`Output.penalty`, (b,)) summed over the rows that have a target:
    a population's padding rows (target IGNORE_INDEX) add nothing, as they add no cross-entropy. One rule for every
    model, lone runs and populations alike; no penalty (None) leaves the loss as it is."""
    if penalty is None:
        return loss
    counted = (target != IGNORE_INDEX).reshape(len(target), -1).any(1)  # (b,)
    return loss + torch.where(counted, penalty.float(), 0.0).sum()


def output_of(model, batch: Batch, precision: str = "float32") -> Output:
    """The output of `model` (a module, or any call of batch -> Output: a population member's functional
    call) with its logits in float32. With precision "bfloat16" its forward (and so its backward) runs under
    torch.autocast: matmuls in bfloat16 on a GPU's tensor cores; the loss is taken in float32 either way."""
    with torch.autocast(batch.target.device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        out = model(batch)
    return out._replace(logits=out.logits.float())


def objective_divisor(target: torch.Tensor, reduction: str) -> torch.Tensor | float:
    """What a step divides its summed loss by before the gradient (TrainSpec.loss): 1, or the batch's targets
    (padding, IGNORE_INDEX, left out; at least 1, so a batch of padding alone divides by 1)."""
    return (target != IGNORE_INDEX).sum().clamp(min=1) if reduction == "mean" else 1.0


def logits_of(model, batch: Batch, precision: str = "float32") -> torch.Tensor:
    """The float32 logits of `model` on `batch` (`output_of`)."""
    return output_of(model, batch, precision).logits


def gradient_norms(grads: torch.Tensor, measure: str) -> torch.Tensor:
    """Each member's norm of one weight's gradient, grads (p, ...) -> (p,) (a lone run is p = 1).

    "frobenius": the root of the sum of squares; "spectral": the largest singular value, what the
    official release's MATLAB `norm()` gives for a matrix (Weight.m). A vector's is its length either way.
    """
    if measure == "spectral" and grads.dim() >= 3:
        flat = grads.flatten(2)  # (p, r, c)
        gram = flat.mT @ flat if flat.shape[-2] >= flat.shape[-1] else flat @ flat.mT  # (p, s, s), s the smaller side
        return largest_eigenvalue(gram).sqrt()  # (p,)
    return grads.flatten(1).norm(dim=1)  # (p,)


SQUARINGS = 16  # of the Gram matrix in `largest_eigenvalue`: a relative error of at most log(s) / 2^17


def largest_eigenvalue(gram: torch.Tensor) -> torch.Tensor:
    """The largest eigenvalue of each symmetric positive semi-definite (p, s, s) matrix: (p,).

    By repeated squaring, as the clipping needs it every step and an eigensolver is many small
    calls that torch.compile cannot fuse (results/speed/step-changes.json times the two side by side). With G_0 = gram and G_k+1 = (G_k / tr G_k)^2, each scaled to trace 1,
    log lambda(G_0) = sum_k 2^-k log tr G_k + 2^-K log lambda(G_K); after K squarings G_K is
    near rank one, and its Frobenius norm stands for lambda(G_K): between it and sqrt(s) times it,
    so the result is high by a factor of at most s^(2^-(K+1)) (1 + 3e-5 for s = 50, K = 16).
    """
    tiny = torch.finfo(gram.dtype).tiny  # a zero gradient: every trace 0, and the answer 0
    log_top = gram.new_zeros(gram.shape[0])
    for k in range(SQUARINGS):
        trace = gram.diagonal(dim1=-2, dim2=-1).sum(-1).clamp(min=tiny)  # (p,)
        log_top = log_top + trace.log() / 2**k
        gram = gram / trace[:, None, None]
        gram = gram @ gram
    return (log_top + gram.flatten(1).norm(dim=1).log() / 2**SQUARINGS).exp()


def clip_scale(norm: torch.Tensor, max_norm) -> torch.Tensor:
    """The factor that brings a gradient of `norm` down to `max_norm` (torch's clip_grad_norm_ rule)."""
    return (max_norm / (norm + 1e-6)).clamp(max=1.0)


def clip_each(model: torch.nn.Module, max_norm: float, measure: str = "frobenius") -> None:
    """Clip the gradient of every weight matrix to `max_norm` on its own (the official release's rule),
    measured by `measure` (`gradient_norms`)."""
    for parameter in model.parameters():
        if parameter.grad is None:
            continue
        if measure == "frobenius":
            torch.nn.utils.clip_grad_norm_(parameter, max_norm)
        else:
            parameter.grad.mul_(clip_scale(gradient_norms(parameter.grad[None], measure)[0], max_norm))


def percent_by_task(wrong: torch.Tensor, split: Batch) -> dict[str, float]:
    """Error in percent, overall and per task when the split has several (joint bAbI)."""
    errors = {"all": round(100 * wrong.float().mean().item(), 2)}
    task = split.task.to(wrong.device)  # (n,)
    tasks = task.unique().tolist()
    if len(tasks) > 1:
        for number in tasks:
            errors[str(number)] = round(100 * wrong[task == number].float().mean().item(), 2)
    return errors


def learning_rate(config: TrainSpec, epoch: int, main_from: int | None) -> float:
    """lr of `epoch`; `main_from` is the epoch the main schedule started (None: still in linear start)."""
    if main_from is None:
        return config.linear_start_lr
    done = epoch - main_from  # main-schedule epochs before this one
    # the release halves at the start of main epoch ep (from 1) when mod(ep, lr_halve_every) == 0: floor(ep / every) halvings
    counted = done + 1 if config.lr_halve_at_multiples else done
    halvings = counted // config.lr_halve_every if config.lr_halve_every else 0
    return config.lr * 0.5**halvings


def weight_decay(config: TrainSpec, epoch: int) -> float:
    """The weight decay of `epoch`'s steps: none before `config.weight_decay_from`."""
    return config.weight_decay if epoch >= config.weight_decay_from else 0.0


# AdaGrad's sums of squared gradients start here, not at 0: TensorFlow's AdagradOptimizer default, which the
# query-reduction network's official code trains with (github seominjoon/qrn, babi/base_model.py)
ADAGRAD_INITIAL = 0.1


def make_optimizer(config: TrainSpec, model) -> torch.optim.Optimizer:
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                   initial_accumulator_value=ADAGRAD_INITIAL)
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=config.lr)


def epoch_order(rows: int, config: TrainSpec, shuffle: torch.Generator) -> torch.Tensor:
    """The training rows of one epoch, batch after batch (`config.batch_size` at a time): each row once
    in a random order ("permutation"), or the release's floor(rows / batch_size) batches of rows
    drawn with replacement ("replacement", train.m's randi; at least one batch for a split smaller
    than one). Lone runs and populations (memnet.population) both draw it here."""
    if config.batch_sampling == "replacement":
        batches = max(1, rows // config.batch_size)
        return torch.randint(rows, (batches * config.batch_size,), generator=shuffle)
    return torch.randperm(rows, generator=shuffle)


def total_epochs(config: TrainSpec, state: dict) -> int:
    """Epochs a run trains in all: its linear start (as long as it lasted, or is planned to) and the main schedule,
    or fewer where it stopped early (`patience`)."""
    if "stopped_at" in state:
        return state["stopped_at"]
    return (state["main_from"] if state["main_from"] is not None else config.linear_start) + config.epochs


def phase_of(state: dict) -> str:
    return "linear" if state["main_from"] is None else "softmax"


def end_epoch(config: TrainSpec, state: dict, phase: str, valid_loss: float, valid_error: float, seconds: float) -> bool:
    """The loop state after an epoch: linear start ends after its epochs, or once validation loss stops
    falling ("plateau"); the softmax comes back and the main schedule starts next epoch. The best epoch so far by
    validation, and an early stop after `patience` epochs without a new best. Lone runs and population members share
    this. Returns whether this epoch is the new best (whose weights `keep="best-valid"` holds on to)."""
    epoch = state["epoch"]
    # the best epoch is one of the main schedule: a linear-start epoch's weights are a model without its softmax
    best = state.setdefault("best_valid", {"error": math.inf, "loss": math.inf, "epoch": -1})
    improved = phase == "softmax" and (valid_error, valid_loss) < (best["error"], best["loss"])
    if improved:
        state["best_valid"] = {"error": valid_error, "loss": valid_loss, "epoch": epoch}
    elif phase == "softmax" and config.patience and epoch - max(best["epoch"], state["main_from"] - 1) >= config.patience:
        state["stopped_at"] = epoch + 1
    if phase == "linear":
        stalled = valid_loss >= state["best_linear_loss"] and config.linear_start_until == "plateau"
        state["best_linear_loss"] = min(state["best_linear_loss"], valid_loss)
        if stalled or epoch + 1 >= config.linear_start:
            state["main_from"] = epoch + 1
    state["epoch"] = epoch + 1
    state["seconds"] += seconds
    return improved


def summary_record(errors: dict, config: TrainSpec, device, state) -> dict:
    """summary.json: error in percent per split (overall and per task), epochs, seed, device, seconds."""
    return {"test_error": errors["test"], "valid_error": errors["valid"], "train_error": errors["train"],
            "epochs": state["epoch"], "linear_start_epochs": state["main_from"] or 0, "seed": config.seed,
            "device": environment(device)["device"], "seconds": round(state["seconds"], 2),
            **({"measured_epoch": state["best_valid"]["epoch"]} if config.keep == "best-valid" else {}),
            **({"stopped_early": True} if "stopped_at" in state else {})}
