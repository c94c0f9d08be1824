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

The loop reads top to bottom in `train_held`: its schedule, clipping and loss are memnet.loop's, which a
population (memnet.population) shares; the run folder's files are written through memnet.run_record.
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

from memnet.batches import Batch
from memnet.locks import hold
from memnet.loop import (Diverged, clip_each, divergence, end_epoch, epoch_order, learning_rate, loss_and_wrong, output_of,
                         make_optimizer, objective_divisor, percent_by_task, phase_of, resolve_device, summary_record, total_epochs,
                         weight_decay)
from memnet.models import build_model
from memnet.progress import progress_bar
from memnet.records import (check_output_folder, code_identity, environment, load_checkpoint, read_json, read_jsonl, save_torch,
                            write_atomic, write_json)
from memnet.run_record import CHECKPOINT, CONFIG, METRICS, SUMMARY, append_epoch, epoch_line, start_run, write_summary
from memnet.selection import best_of
from memnet.spec import RunSpec, SpecError, TaskSpec, TrainSpec, differences
from tasks.registry import TaskData, load


def train_step(model, optimizer, batch: Batch, clip_norm: float, clip_measure: str = "frobenius",
               precision: str = "float32", reduction: str = "sum") -> tuple[float, torch.Tensor]:
    """One update; returns the batch's summed loss and its `wrong` mask. `reduction`: TrainSpec.loss."""
    model.train()
    loss, wrong = loss_and_wrong(output_of(model, batch, precision), batch.target)
    if not torch.isfinite(loss):
        raise Diverged(f"loss became {loss.item()}")
    optimizer.zero_grad(set_to_none=True)
    (loss / objective_divisor(batch.target, reduction)).backward()
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
        loss, wrong = loss_and_wrong(output_of(model, batch, precision), batch.target)
        total += loss.item()
        wrongs.append(wrong)
    wrong = torch.cat(wrongs)
    return {"loss": total / len(wrong), "error": wrong.sum().item() / len(wrong), "wrong": wrong}


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
        loss, wrong = train_step(model, optimizer, batch, config.clip_norm, config.clip_measure, config.precision, config.loss)
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
            group["lr"], group["weight_decay"] = lr, weight_decay(config, epoch)
        try:
            train_loss, wrong = train_epoch(model, optimizer, train, config, shuffle, noise, data.sizes.memory_size)
        except Diverged as error:
            raise Diverged(divergence(out, str(error), epoch, config.seed)) from None
        valid = evaluate(model, splits["valid"], precision=config.precision)
        improved = end_epoch(config, state, phase, valid["loss"], valid["error"], time.perf_counter() - started)
        if improved and config.keep == "best-valid":
            state["best_weights"] = {name: value.detach().cpu().clone() for name, value in model.state_dict().items()}
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
    if config.keep == "best-valid" and "best_weights" in state:  # the summary and the last checkpoint hold the best epoch's
        model.load_state_dict(state["best_weights"])
        save_torch(checkpoint_path, checkpoint(spec, data, model, optimizer, shuffle, noise, state))
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
