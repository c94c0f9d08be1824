"""The training loop: one run, repeats of it, and the records they leave.

A run directory holds
    config.json      the run's spec as resolved (memnet.spec), the sizes read from the data, and the
                     environment that ran it (code identity, libraries, device, command); one more
                     environment per resume under "resumed"
    code-HASH.diff   the uncommitted changes of the code that ran, when there were any
    metrics.jsonl    one line per epoch: phase, lr, train/valid loss and error, seconds
    checkpoint.pt    spec, sizes, vocabulary, model, optimizer, every generator and the loop state,
                     rewritten atomically every epoch
    summary.json     test/valid/train error in percent (overall and per task), device, seconds, seed

The loop is the paper's (Sukhbaatar et al. 2015, sec. 4.2): SGD, lr 0.01 halved every 25 epochs,
batch 32, gradient norm clipped at 40 per weight matrix; optional linear start (softmax removed,
lr 0.005, then the full schedule from the top, as the official release does) and random noise.
Where the release's code does otherwise (its halving epoch, batches drawn with replacement,
clipping on the spectral norm, its noise rule), a TrainSpec switch does it too (preset `release`).
"""

import dataclasses
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy
import torch
import torch.nn.functional as F

from memnet.batches import IGNORE_INDEX, Batch
from memnet.locks import hold
from memnet.models import build_model
from memnet.progress import progress_bar
from memnet.records import (check_output_folder, code_identity, environment, load_checkpoint, read_json, read_jsonl, save_torch,
                            write_atomic, write_json)
from memnet.run_record import CHECKPOINT, CONFIG, METRICS, SUMMARY, append_epoch, epoch_line, start_run, write_summary
from memnet.selection import best_of
from memnet.spec import RunSpec, SpecError, TaskSpec, TrainSpec, differences
from tasks.registry import TaskData, load

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


def loss_and_wrong(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy summed over the batch, and per example whether any predicted position is wrong.

    Summed, not averaged: the paper's lr 0.01 and clipping at 40 are for the summed loss of the
    official release; averaging would divide every step by the batch size.
    """
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum")
    wrong = (logits.argmax(-1) != target) & (target != IGNORE_INDEX)  # (b,) or (b, t)
    return loss, wrong.reshape(len(target), -1).any(1)  # (), (b,)


def logits_of(model, batch: Batch, precision: str = "float32") -> torch.Tensor:
    """The logits of `model` (a module, or any call of batch -> Output: a population member's functional
    call), in float32. With precision "bfloat16" its forward (and so its backward) runs under torch.autocast:
    matmuls in bfloat16 on a GPU's tensor cores; the loss is taken in float32 either way."""
    with torch.autocast(batch.target.device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        logits = model(batch).logits
    return logits.float()


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


def train_step(model, optimizer, batch: Batch, clip_norm: float, clip_measure: str = "frobenius",
               precision: str = "float32") -> tuple[float, torch.Tensor]:
    model.train()
    loss, wrong = loss_and_wrong(logits_of(model, batch, precision), batch.target)
    if not torch.isfinite(loss):
        raise Diverged(f"loss became {loss.item()}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_norm:
        clip_each(model, clip_norm, clip_measure)
    optimizer.step()
    return loss.item(), wrong


@torch.no_grad()
def evaluate(model, split: Batch, batch_size: int = 1000, precision: str = "float32") -> dict:
    """Loss, error (fraction) and the per-example `wrong` mask over a whole split, of any task family."""
    model.eval()
    total, wrongs = 0.0, []
    for batch in split.chunks(batch_size):
        loss, wrong = loss_and_wrong(logits_of(model, batch, precision), batch.target)
        total += loss.item()
        wrongs.append(wrong)
    wrong = torch.cat(wrongs)
    return {"loss": total / len(wrong), "error": wrong.sum().item() / len(wrong), "wrong": wrong}


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


def make_optimizer(config: TrainSpec, model) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr)
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


def train_epoch(model, optimizer, train: Batch, config: TrainSpec, shuffle: torch.Generator,
                noise: torch.Generator | None, memory_size: int = 0):
    """One epoch of training batches (`epoch_order`); mean loss per example and the `wrong` mask.

    `shuffle` (on the CPU) draws the batches; `noise`, a generator on the data's device, draws the
    random noise when `config.random_noise` asks for it (the spec allows that for story data only,
    whose `memory_size` sets how many numbers a story draws).
    """
    losses, wrongs = [], []
    for index in epoch_order(len(train), config, shuffle).split(config.batch_size):
        batch = train.select(index)
        if config.random_noise:
            batch = batch.with_time_noise(noise, memory_size, config.noise_rule)
        loss, wrong = train_step(model, optimizer, batch, config.clip_norm, config.clip_measure, config.precision)
        losses.append(loss)
        wrongs.append(wrong)
    wrong = torch.cat(wrongs)
    return sum(losses) / len(wrong), wrong


def refuse_other_work(out: Path, spec: RunSpec, resume: bool) -> None:
    """Refuse, before anything is written, an --out that holds another spec's run or a finished one.

    Read-only: a refused command leaves the folder exactly as it was.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a run folder; pick another --out")
    check_output_folder(out)  # a parent that is a file, or a folder this user cannot write
    if (out / SUMMARY).exists() and not (out / CONFIG).exists():
        raise FileExistsError(f"{out} holds a group of repeats, not one run; pick another --out")
    if not (out / CONFIG).exists():
        return
    stored = read_json(out / CONFIG)
    if "spec" not in stored:
        raise SpecError(f"{out} holds a run written by an older memnet, without a run spec to compare; pick another --out")
    changed = differences(stored["spec"], spec.to_dict())
    if changed:
        hint = f"; to continue it as it was: memnet train --from {out / CONFIG} --out {out} --resume" if resume else ""
        raise SpecError(f"{out} holds a run of another spec ({'; '.join(changed)}); nothing was changed. "
                        f"Pick another --out{hint}")
    if not resume and (out / SUMMARY).exists():
        raise FileExistsError(f"{out} already holds this finished run; pick another --out, or --resume to keep it")
    if not resume and (out / CHECKPOINT).exists():
        raise FileExistsError(f"{out} holds this run unfinished; continue it with --resume, or pick another --out")


def load_data(task: TaskSpec) -> TaskData:
    """The data a task spec names; with `test_data_dir`, the test split comes from there (training vocabulary)."""
    data = load(task.name, data_dir=task.data_dir, variant=task.variant, memory_size=task.memory_size)
    if task.test_data_dir:
        tested = load(task.name, data_dir=task.test_data_dir, variant=task.variant, memory_size=task.memory_size, vocab=data.vocab)
        data.splits["test"], data.examples["test"] = tested.splits["test"], tested.examples["test"]
    return data


def record_environment(out: Path, device: torch.device) -> dict:
    """The environment of this process, with the diff of uncommitted code saved beside the record."""
    env = environment(device)
    if env["code"]["dirty"]:
        name = f"code-{env['code']['diff_sha256'][:12]}.diff"
        if not (out / name).exists():
            write_atomic(out / name, code_identity()["diff"])
        env["code"]["diff_file"] = name
    return env


def train_run(spec: RunSpec, out: str | Path, *, resume: bool = False, progress: bool = True, device: str = "auto",
              use_wandb: bool = False, data: TaskData | None = None, preset: str | None = None,
              identity: dict | None = None) -> dict:
    """Train the run `spec` describes into the folder `out`; return its summary.

    `out` is held against other writers; a folder that holds another spec's run is refused
    untouched; `resume` continues this spec's run from its last checkpoint.
    """
    out = Path(out)
    refuse_other_work(out, spec, resume)
    data = data or load_data(spec.task)  # bad data is refused before the folder is touched
    with hold(out):
        refuse_other_work(out, spec, resume)  # again, now that no one else can write
        if resume and (out / SUMMARY).exists():
            return read_json(out / SUMMARY)
        return train_held(spec, out, resume, progress, resolve_device(device), use_wandb, data, preset, identity)


def restore(spec: RunSpec, out: Path, data: TaskData, model, optimizer, shuffle: torch.Generator, noise: torch.Generator,
            device: torch.device, preset: str | None, engine: dict, identity: dict | None = None) -> dict:
    """Resume a run from its checkpoint (model, optimizer, every generator, loop state), or start its
    records afresh; returns the loop state. Shared by lone runs and population members.

    `engine`: how it trains ({"engine": "alone"} or a population's size, whether compiled, threads), kept in
    the record because only a lone run on the CPU repeats its numbers bit for bit. `identity`: what the run
    is in a benchmark's grid (memnet.bench), recorded so that no reader parses its folder's name."""
    checkpoint_path = out / CHECKPOINT
    if checkpoint_path.exists():
        saved = load_checkpoint(checkpoint_path)
        changed = differences(saved["spec"], spec.to_dict())
        if changed:
            raise SpecError(f"{checkpoint_path} was trained with another spec ({'; '.join(changed)}); pick another --out")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        shuffle.set_state(saved["shuffle"])
        noise.set_state(saved["noise"])
        set_global_generators(saved["generators"])  # dropout and any other draw from a global generator
        state = saved["state"]
        # a crash may have left a last line half written, or lines past the checkpoint's epoch
        lines = read_jsonl(out / METRICS, drop_partial_last=True) if (out / METRICS).exists() else []
        write_atomic(out / METRICS, "".join(json.dumps(line) + "\n" for line in lines if line["epoch"] < state["epoch"]))
        record = read_json(out / CONFIG)
        record.setdefault("resumed", []).append({**record_environment(out, device), "engine": engine})
        write_json(out / CONFIG, record)
        return state
    if (out / CONFIG).exists():  # a folder copied without its checkpoint
        print(f"{out} has no checkpoint: training this run from the start", file=sys.stderr)
    start_run(out, {"spec": spec.to_dict(), "sizes": dataclasses.asdict(data.sizes), "preset": preset, "skipped": data.skipped,
                    "environment": record_environment(out, device), "engine": engine,
                    **({"identity": identity} if identity else {})})
    return {"epoch": 0, "main_from": 0 if not spec.train.linear_start else None, "best_linear_loss": math.inf, "seconds": 0.0}


def global_generators() -> dict:
    """The state of every global generator a model may draw from: torch's (CPU and CUDA), numpy's, Python's."""
    kind, keys, position, has_gauss, gauss = numpy.random.get_state()  # plain values: the checkpoint loads weights_only
    return {"torch": torch.get_rng_state(), "numpy": [kind, torch.from_numpy(keys.astype("int64")), position, has_gauss, gauss],
            "python": list(random.getstate()[1]), "python_version": random.getstate()[0],
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_global_generators(saved: dict) -> None:
    torch.set_rng_state(saved["torch"])
    kind, keys, position, has_gauss, gauss = saved["numpy"]
    numpy.random.set_state((kind, keys.numpy().astype("uint32"), position, has_gauss, gauss))
    random.setstate((saved["python_version"], tuple(saved["python"]), None))
    if saved["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])


def total_epochs(config: TrainSpec, state: dict) -> int:
    """Epochs a run trains in all: its linear start (as long as it lasted, or is planned to) and the main schedule."""
    return (state["main_from"] if state["main_from"] is not None else config.linear_start) + config.epochs


def phase_of(state: dict) -> str:
    return "linear" if state["main_from"] is None else "softmax"


def end_epoch(config: TrainSpec, state: dict, phase: str, valid_loss: float, seconds: float) -> None:
    """The loop state after an epoch: linear start ends after its epochs, or once validation loss stops
    falling ("plateau"); the softmax comes back and the main schedule starts next epoch. Lone runs and
    population members share this."""
    epoch = state["epoch"]
    if phase == "linear":
        stalled = valid_loss >= state["best_linear_loss"] and config.linear_start_until == "plateau"
        state["best_linear_loss"] = min(state["best_linear_loss"], valid_loss)
        if stalled or epoch + 1 >= config.linear_start:
            state["main_from"] = epoch + 1
    state["epoch"] = epoch + 1
    state["seconds"] += seconds


def train_held(spec: RunSpec, out: Path, resume: bool, progress: bool, device: torch.device, use_wandb: bool,
               data: TaskData | None, preset: str | None, identity: dict | None = None) -> dict:
    config, checkpoint_path = spec.train, out / CHECKPOINT
    data = data or load_data(spec.task)
    torch.manual_seed(config.seed)
    model = build_model(spec.model.name, spec.model.config, data.sizes).to(device)
    optimizer = make_optimizer(config, model)
    shuffle = torch.Generator().manual_seed(config.seed)  # batch order: same seed, same run
    noise = torch.Generator(device=device).manual_seed(config.seed)  # random noise, drawn where the data is
    engine = {"engine": "alone", "threads": torch.get_num_threads()}
    state = restore(spec, out, data, model, optimizer, shuffle, noise, device, preset, engine, identity)
    splits = {name: split.to(device) for name, split in data.splits.items()}
    train = splits["train"]
    if use_wandb:
        from memnet import wandb_log

        logger = wandb_log.start(out, spec.model.name, spec.model.config, config, spec.task.name)
    else:
        logger = None

    bar = progress_bar(total_epochs(config, state), f"{spec.model.name} {spec.task.name} seed {config.seed}", enabled=progress,
                       unit="epoch", initial=state["epoch"])
    while state["epoch"] < total_epochs(config, state):
        epoch, started, phase = state["epoch"], time.perf_counter(), phase_of(state)
        if config.linear_start:  # linear start takes the memory softmax out (spec checks the model has one)
            model.use_softmax = phase == "softmax"
        lr = learning_rate(config, epoch, state["main_from"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        try:
            train_loss, wrong = train_epoch(model, optimizer, train, config, shuffle, noise, data.sizes.memory_size)
        except Diverged as error:
            raise Diverged(divergence(out, str(error), epoch, config.seed)) from None
        valid = evaluate(model, splits["valid"], precision=config.precision)
        end_epoch(config, state, phase, valid["loss"], time.perf_counter() - started)
        line = epoch_line(epoch, phase, lr, train_loss, wrong.sum().item() / len(wrong), valid["loss"], valid["error"],
                          time.perf_counter() - started)
        append_epoch(out, line)
        save_torch(checkpoint_path, checkpoint(spec, data, model, optimizer, shuffle, noise, state))
        if logger:
            wandb_log.log_epoch(logger, line, model, splits["valid"])
        bar.total = total_epochs(config, state)
        bar.set_postfix(loss=f"{line['train_loss']:.3f}", valid_err=f"{100 * valid['error']:.1f}%")
        bar.update(1)
    bar.close()
    summary = summarise(model, splits, config, device, state)
    write_summary(out, summary)
    if logger:
        logger.summary.update({"test_error": summary["test_error"]["all"], "valid_error": summary["valid_error"]["all"]})
        logger.finish()
    return summary


def checkpoint(spec: RunSpec, data: TaskData, model, optimizer, shuffle, noise, state) -> dict:
    """Everything to predict with the model or to resume its training, as plain tensors and lists."""
    return {
        "spec": spec.to_dict(), "sizes": dataclasses.asdict(data.sizes), "vocab": data.vocab.state_dict(),
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "shuffle": shuffle.get_state(),
        "noise": noise.get_state(), "generators": global_generators(), "state": state,
    }


def summarise(model, splits, config: TrainSpec, device, state) -> dict:
    errors = {name: percent_by_task(evaluate(model, split, precision=config.precision)["wrong"].cpu(), split.to("cpu"))
              for name, split in splits.items()}
    return summary_record(errors, config, device, state)


def summary_record(errors: dict, config: TrainSpec, device, state) -> dict:
    """summary.json: error in percent per split (overall and per task), epochs, seed, device, seconds."""
    return {"test_error": errors["test"], "valid_error": errors["valid"], "train_error": errors["train"],
            "epochs": state["epoch"], "linear_start_epochs": state["main_from"] or 0, "seed": config.seed,
            "device": environment(device)["device"], "seconds": round(state["seconds"], 2)}


def train_repeats(spec: RunSpec, out: str | Path, repeats: int = 1, *, resume: bool = False, progress: bool = True,
                  device: str = "auto", use_wandb: bool = False, preset: str | None = None) -> dict:
    """Train `repeats` seeds (seed, seed+1, ...) and keep the best by validation (`memnet.selection`).

    One repeat writes its run straight into `out`; several write `out/seed-S/` each and a
    `summary.json` in `out` that records every repeat and names the best. Every seed folder is
    checked against the spec before the first one trains.
    """
    if repeats < 1:
        raise SpecError(f"repeats: must be at least 1, got {repeats}")
    if repeats == 1:
        return train_run(spec, out, resume=resume, progress=progress, device=device, use_wandb=use_wandb, preset=preset)
    out = Path(out)
    if (out / CONFIG).exists():
        raise FileExistsError(f"{out} holds a single run; pick another --out for {repeats} repeats")
    seeds = [spec.with_seed(seed) for seed in range(spec.train.seed, spec.train.seed + repeats)]
    for seed_spec in seeds:  # refuse before any training
        run_dir = out / f"seed-{seed_spec.train.seed}"
        refuse_other_work(run_dir, seed_spec, resume=True)
    with hold(out, "repeats folder"):
        data, runs = load_data(spec.task), []
        for seed_spec in seeds:
            run_dir, seed = out / f"seed-{seed_spec.train.seed}", seed_spec.train.seed
            try:
                summary = train_run(seed_spec, run_dir, resume=True, progress=progress, device=device,
                                    use_wandb=use_wandb, data=data, preset=preset)
                runs.append({"run": run_dir.name, **summary})
            except Diverged as error:
                print(f"repeat with seed {seed} diverged and is left out: {error}")
                runs.append({"run": run_dir.name, "seed": seed, "diverged": str(error)})
        finished = [run for run in runs if "diverged" not in run]
        if not finished:
            raise Diverged(f"all {repeats} repeats diverged")
        best = best_of(finished, valid=lambda run: run["valid_error"]["all"])
        tests = torch.tensor([run["test_error"]["all"] for run in finished])
        summary = {**best, "best_run": best["run"], "repeats": runs, "spec": spec.to_dict(),
                   "test_error_mean": round(tests.mean().item(), 2),
                   "test_error_std": round(tests.std().item(), 2) if len(tests) > 1 else 0.0}
        write_json(out / SUMMARY, summary)
    return summary
