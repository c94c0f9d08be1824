"""The training loop: one run, repeats of it, and the records they leave.

A run directory holds
    config.json      model, training and task settings, and the environment that ran them
    metrics.jsonl    one line per epoch: phase, lr, train/valid loss and error, seconds
    checkpoint.pt    model, vocabulary, configs and loop state, rewritten atomically every epoch
    summary.json     test/valid/train error in percent (overall and per task), device, seconds, seed

The loop is the paper's (Sukhbaatar et al. 2015, sec. 4.2): SGD, lr 0.01 halved every 25 epochs,
batch 32, gradient norm clipped at 40 per weight matrix; optional linear start (softmax removed,
lr 0.005, then the full schedule from the top, as the official release does) and random noise.
"""

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from memnet.models import build_model, model_config
from memnet.records import environment, read_json, save_torch, write_atomic, write_json
from tasks.babi_tensors import add_time_noise
from tasks.registry import TaskData

IGNORE = -100  # target value of positions with nothing to predict (padding in sequences)
OPTIMIZERS = ("sgd", "adam")
LINEAR_START_UNTIL = ("epochs", "plateau")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100  # epochs of the main schedule (after any linear start)
    batch_size: int = 32
    optimizer: str = "sgd"  # "sgd" as in the paper, or "adam"
    lr: float = 0.01
    lr_halve_every: int = 25  # epochs between halvings of lr; 0 keeps it constant (joint: 15)
    clip_norm: float = 40.0  # max gradient norm of each weight matrix; 0 turns clipping off
    linear_start: int = 0  # epochs trained with the softmax removed before the main schedule; 0 = off
    linear_start_lr: float = 0.005  # the paper's linear-start learning rate
    linear_start_until: str = "epochs"  # "epochs": all of them; "plateau": end early once valid loss stops falling
    random_noise: bool = False  # insert up to 10% empty memories in the time index while training
    seed: int = 0
    device: str = "auto"  # "auto" (a GPU when present), "cpu" or "cuda"
    wandb: bool = False  # log metrics to wandb (offline unless the user configured it)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.linear_start_until not in LINEAR_START_UNTIL:
            raise ValueError(f"unknown linear_start_until {self.linear_start_until!r}; choose one of {', '.join(LINEAR_START_UNTIL)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"unknown device {self.device!r}; choose one of auto, cpu, cuda")


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but PyTorch sees no GPU; use --device auto or cpu")
    return torch.device(name)


def loss_and_wrong(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy summed over the batch, and per example whether any predicted position is wrong.

    Summed, not averaged: the paper's lr 0.01 and clipping at 40 are for the summed loss of the
    official release; averaging would divide every step by the batch size.
    """
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE, reduction="sum")
    wrong = (logits.argmax(-1) != target) & (target != IGNORE)  # (b,) or (b, t)
    return loss, wrong.reshape(len(target), -1).any(1)  # (), (b,)


def clip_each(model: torch.nn.Module, max_norm: float) -> None:
    """Clip the gradient of every weight matrix to `max_norm` on its own (the official release's rule)."""
    for parameter in model.parameters():
        if parameter.grad is not None:
            torch.nn.utils.clip_grad_norm_(parameter, max_norm)


def train_step(model, optimizer, batch: dict, clip_norm: float) -> tuple[float, torch.Tensor]:
    model.train()
    loss, wrong = loss_and_wrong(model(batch).logits, batch["target"])
    if not torch.isfinite(loss):
        raise Diverged(f"loss became {loss.item()}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_norm:
        clip_each(model, clip_norm)
    optimizer.step()
    return loss.item(), wrong


@torch.no_grad()
def evaluate(model, split: dict[str, torch.Tensor], batch_size: int = 1000) -> dict:
    """Loss, error (fraction) and the per-example `wrong` mask over a whole split."""
    model.eval()
    total, wrongs = 0.0, []
    for start in range(0, len(split["target"]), batch_size):
        batch = {key: value[start : start + batch_size] for key, value in split.items()}
        loss, wrong = loss_and_wrong(model(batch).logits, batch["target"])
        total += loss.item()
        wrongs.append(wrong)
    wrong = torch.cat(wrongs)
    return {"loss": total / len(wrong), "error": wrong.float().mean().item(), "wrong": wrong}


def percent_by_task(wrong: torch.Tensor, split: dict) -> dict[str, float]:
    """Error in percent, overall and per bAbI task when the split has several."""
    errors = {"all": round(100 * wrong.float().mean().item(), 2)}
    if "task" in split and len(split["task"].unique()) > 1:
        for task in split["task"].unique().tolist():
            errors[str(task)] = round(100 * wrong[split["task"] == task].float().mean().item(), 2)
    return errors


def learning_rate(config: TrainConfig, epoch: int, main_from: int | None) -> float:
    """lr of `epoch`; `main_from` is the epoch the main schedule started (None: still in linear start)."""
    if main_from is None:
        return config.linear_start_lr
    halvings = (epoch - main_from) // config.lr_halve_every if config.lr_halve_every else 0
    return config.lr * 0.5**halvings


def make_optimizer(config: TrainConfig, model) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr)
    return torch.optim.SGD(model.parameters(), lr=config.lr)


def trim_memory(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop memory slots that no story of the batch fills (a split is padded to its longest story)."""
    if "memory_mask" not in batch:
        return batch
    used = int(batch["memory_mask"].sum(1).max())
    return {key: value[:, :used] if key in ("story", "memory_mask", "time") else value for key, value in batch.items()}


def to_device(split: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {key: value.to(device) for key, value in split.items()}


def train_epoch(model, optimizer, train: dict[str, torch.Tensor], config: TrainConfig, shuffle: torch.Generator):
    """One pass over the training split in shuffled batches; mean loss per example and the `wrong` mask."""
    losses, wrongs = [], []
    for index in torch.randperm(len(train["target"]), generator=shuffle).split(config.batch_size):
        batch = trim_memory({key: value[index.to(train["target"].device)] for key, value in train.items()})
        if config.random_noise:
            device = batch["time"].device
            batch["time"] = add_time_noise(batch["time"].cpu(), batch["memory_mask"].cpu(), shuffle).to(device)
        loss, wrong = train_step(model, optimizer, batch, config.clip_norm)
        losses.append(loss)
        wrongs.append(wrong)
    wrong = torch.cat(wrongs)
    return sum(losses) / len(wrong), wrong


def check_fits(config: TrainConfig, model, train: dict[str, torch.Tensor], model_name: str, task: str) -> None:
    """Options that only make sense for memory models fail loudly elsewhere."""
    if config.random_noise and "time" not in train:
        raise ValueError(f"random noise moves the time index of memories; task {task} has none")
    if config.linear_start and not hasattr(model, "use_softmax"):
        raise ValueError(f"linear start removes the memory softmax; model {model_name} has none to remove")


def train_run(model_name: str, model_options: dict, config: TrainConfig, data: TaskData, task_options: dict,
              out: str | Path, resume: bool = False, progress: bool = True) -> dict:
    """Train one model with one seed; write the run directory; return the summary."""
    out = Path(out)
    checkpoint_path = out / "checkpoint.pt"
    if (out / "summary.json").exists() and not resume:
        raise FileExistsError(f"{out} already holds a finished run; pick another --out, or --resume to keep it")
    if checkpoint_path.exists() and not resume:
        raise FileExistsError(f"{out} holds an unfinished run; continue it with --resume, or pick another --out")
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    model_cfg = model_config(model_name, data.sizes, model_options)
    model = build_model(model_name, model_cfg).to(device)
    optimizer = make_optimizer(config, model)
    shuffle = torch.Generator().manual_seed(config.seed)  # batches and noise: same seed, same run
    state = {"epoch": 0, "main_from": 0 if not config.linear_start else None, "best_linear_loss": math.inf, "seconds": 0.0}
    if resume and checkpoint_path.exists():
        saved = torch.load(checkpoint_path, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        shuffle.set_state(saved["shuffle"])
        state = saved["state"]
        keep = [line for line in (out / "metrics.jsonl").read_text().splitlines() if json.loads(line)["epoch"] < state["epoch"]]
        write_atomic(out / "metrics.jsonl", "".join(line + "\n" for line in keep))
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "metrics.jsonl", "")
    write_json(out / "config.json", {
        "model": model_name, "model_config": dataclasses.asdict(model_cfg), "train_config": dataclasses.asdict(config),
        "task": data.name, "task_options": task_options, "skipped": data.skipped, "environment": environment(device),
    })
    splits = {name: to_device(split, device) for name, split in data.splits.items()}
    train = splits["train"]
    check_fits(config, model, train, model_name, data.name)
    if config.wandb:
        from memnet import wandb_log

        logger = wandb_log.start(out, model_name, model_cfg, config, data.name)
    else:
        logger = None

    def total_epochs():
        return (state["main_from"] if state["main_from"] is not None else config.linear_start) + config.epochs

    bar = tqdm(total=total_epochs(), initial=state["epoch"], desc=f"{model_name} {data.name} seed {config.seed}",
               disable=not progress, unit="epoch", dynamic_ncols=True)
    while state["epoch"] < total_epochs():
        epoch, started = state["epoch"], time.perf_counter()
        phase = "linear" if state["main_from"] is None else "softmax"
        if hasattr(model, "use_softmax"):  # memory models: linear start takes their softmax out
            model.use_softmax = phase == "softmax"
        lr = learning_rate(config, epoch, state["main_from"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        try:
            train_loss, wrong = train_epoch(model, optimizer, train, config, shuffle)
        except Diverged as error:
            raise Diverged(f"{out}: {error} at epoch {epoch + 1} (seed {config.seed}); try a lower --lr or clipping") from None
        valid = evaluate(model, splits["valid"])
        if phase == "linear":
            stalled = valid["loss"] >= state["best_linear_loss"] and config.linear_start_until == "plateau"
            state["best_linear_loss"] = min(state["best_linear_loss"], valid["loss"])
            if stalled or epoch + 1 >= config.linear_start:
                state["main_from"] = epoch + 1  # put the softmax back; the main schedule starts next epoch
        state["epoch"] = epoch + 1
        state["seconds"] += time.perf_counter() - started
        line = {"epoch": epoch, "phase": phase, "lr": lr, "train_loss": train_loss,
                "train_error": wrong.float().mean().item(), "valid_loss": valid["loss"], "valid_error": valid["error"],
                "seconds": round(time.perf_counter() - started, 4)}
        with open(out / "metrics.jsonl", "a") as file:
            file.write(json.dumps(line) + "\n")
        save_torch(checkpoint_path, checkpoint(model_name, model_cfg, model, optimizer, data, task_options, config, shuffle, state))
        if logger:
            wandb_log.log_epoch(logger, line, model, splits["valid"])
        bar.total = total_epochs()
        bar.set_postfix(loss=f"{line['train_loss']:.3f}", valid_err=f"{100 * valid['error']:.1f}%")
        bar.update(1)
    bar.close()
    summary = summarise(model, splits, config, device, state)
    write_json(out / "summary.json", summary)
    if logger:
        logger.summary.update({"test_error": summary["test_error"]["all"], "valid_error": summary["valid_error"]["all"]})
        logger.finish()
    return summary


def checkpoint(model_name, model_cfg, model, optimizer, data, task_options, config, shuffle, state) -> dict:
    """Everything to predict with the model or to resume its training, as plain tensors and lists."""
    return {
        "model_name": model_name, "model_config": dataclasses.asdict(model_cfg), "model": model.state_dict(),
        "vocab": data.vocab.state_dict(), "task": data.name, "task_options": task_options,
        "train_config": dataclasses.asdict(config), "optimizer": optimizer.state_dict(),
        "shuffle": shuffle.get_state(), "state": state,
    }


def summarise(model, splits, config: TrainConfig, device, state) -> dict:
    errors = {name: percent_by_task(evaluate(model, split)["wrong"].cpu(), {k: v.cpu() for k, v in split.items()})
              for name, split in splits.items()}
    return {"test_error": errors["test"], "valid_error": errors["valid"], "train_error": errors["train"],
            "epochs": state["epoch"], "linear_start_epochs": state["main_from"] or 0, "seed": config.seed,
            "device": environment(device)["device"], "seconds": round(state["seconds"], 2)}


def train_repeats(model_name: str, model_options: dict, config: TrainConfig, data: TaskData, task_options: dict,
                  out: str | Path, repeats: int = 1, resume: bool = False, progress: bool = True) -> dict:
    """Train `repeats` seeds (seed, seed+1, ...) and keep the one with the lowest validation error.

    One repeat writes its run straight into `out`; several write `out/seed-S/` each and a
    `summary.json` in `out` that records every repeat and names the best.
    """
    if repeats == 1:
        return train_run(model_name, model_options, config, data, task_options, out, resume, progress)
    out = Path(out)
    runs = []
    for seed in range(config.seed, config.seed + repeats):
        run_dir = out / f"seed-{seed}"
        if (run_dir / "summary.json").exists():
            runs.append({"run": run_dir.name, **read_json(run_dir / "summary.json")})  # finished earlier
            continue
        try:
            summary = train_run(model_name, model_options, dataclasses.replace(config, seed=seed), data, task_options,
                                run_dir, resume=resume or (run_dir / "checkpoint.pt").exists(), progress=progress)
            runs.append({"run": run_dir.name, **summary})
        except Diverged as error:
            print(f"repeat with seed {seed} diverged and is left out: {error}")
            runs.append({"run": run_dir.name, "seed": seed, "diverged": str(error)})
    finished = [run for run in runs if "diverged" not in run]
    if not finished:
        raise Diverged(f"all {repeats} repeats diverged")
    best = min(finished, key=lambda run: (run["valid_error"]["all"], run["seed"]))
    tests = torch.tensor([run["test_error"]["all"] for run in finished])
    summary = {**best, "best_run": best["run"], "repeats": runs,
               "test_error_mean": round(tests.mean().item(), 2),
               "test_error_std": round(tests.std().item(), 2) if len(tests) > 1 else 0.0}
    write_json(out / "summary.json", summary)
    return summary
