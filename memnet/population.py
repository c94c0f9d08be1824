"""Population training: P runs trained as one, each member exactly the run it would be alone.

A population stacks the parameters of P runs of one model along a leading member axis p and
trains them with one step: vmap(grad(loss)) over the members, then each member's own gradient
clipping and update; the step is compiled once per shape (`torch.compile`, inductor). Each member
keeps everything a run has alone (`memnet.train`): its task data, seed, batch order, noise stream,
learning-rate schedule, linear start, clipping, epochs, NaN stop and run folder, so its records
are those of the same spec trained alone, to float rounding.

    members   runs of one model and config, batch size and optimizer (`population_key`); their
              tasks, seeds, schedules and other numbers may differ
    data      each member's splits padded to one shape and stacked: (p, n + 1, ...). Padding is
              0, and padded rows have the target IGNORE_INDEX, so a member with fewer questions,
              or a last batch of fewer than b rows, reads rows that add nothing to its loss
    params    each member's parameters, built alone from its seed, zero-padded to the largest
              member's shapes: a larger vocabulary gives rows the member never reads, and answers
              past its own vocabulary are masked out of its softmax

Shapes: p members, b batch rows, n questions, e noise draws per story.
"""

import dataclasses
import math
import sys
import time
import warnings
from contextlib import ExitStack
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from memnet.batches import IGNORE_INDEX, Batch, draw_time_noise, noise_draws, noised_time
from memnet.locks import hold
from memnet.loop import (ADAGRAD_INITIAL, clip_scale, divergence, end_epoch, epoch_order, gradient_norms, learning_rate,
                         make_optimizer, objective_divisor, output_of, percent_by_task, phase_of, resolve_device, summary_record,
                         total_epochs, weight_decay, with_penalty)
from memnet.models import POPULATION, build_model
from memnet.progress import progress_bar
from memnet.records import read_json, save_torch
from memnet.run_record import CHECKPOINT, SUMMARY, append_epoch, epoch_line, write_summary
from memnet.spec import RunSpec
from memnet.train import checkpoint, refuse_other_work, restore
from tasks.registry import TaskData

EVAL_ROWS = 128  # rows per member in one evaluation call (splits are padded to a multiple of it)
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which single runs use
ADAGRAD_EPS = 1e-10  # torch.optim.Adagrad's default
# Dynamo counts the graphs of every population a process builds against the one step function they share
# (and the one forward); past its default of 8 it would run the rest eagerly, with one warning. A bench
# worker trains a unit after another, each of its own shapes, so the limit is raised while our steps run.
RECOMPILE_LIMIT = 1024
OPTIMIZER_STATE = {"m": "exp_avg", "v": "exp_avg_sq", "sum": "sum"}  # a member's moments by their names in torch's optimizers
# Each step's own sentence table (Population.step_tables) has a multiple of this many rows a member: joint bAbI's
# batches need 226 on average and at most 323 in 200 batches of 32, so its step compiles for 384 rows, rarely more
TABLE_ROUNDING = 128


def population_key(spec: RunSpec) -> tuple | None:
    """Runs with the same key can train as one population; None: this model trains alone.

    The key holds what shapes the compiled step: the model and its config, the batch size, the
    optimizer, the norm that clipping measures, the random-noise rule (its draws' width), the precision and the loss's
    reduction. And the weight decay: each member's is a step argument now, but a population pads its members to one
    shape, which changes their float sums (docs/training.md), so benchmarks keep packing runs as when their records were made."""
    if spec.model.name not in POPULATION:
        return None
    return (spec.model.name, spec.model.config, spec.train.batch_size, spec.train.optimizer, spec.train.weight_decay,
            spec.task.family, spec.train.clip_measure, spec.train.noise_rule, spec.train.precision, spec.train.loss)


@dataclasses.dataclass
class Member:
    """One run of a population: its spec, folder and data, and the loop state it would have alone."""

    spec: RunSpec
    out: Path
    data: TaskData
    preset: str | None = None
    identity: dict | None = None  # what the run is in its benchmark's grid (memnet.train.restore records it)
    state: dict = dataclasses.field(default_factory=dict)  # epoch, main_from, best_linear_loss, seconds (as memnet.train)
    shuffle: torch.Generator | None = None
    noise: torch.Generator | None = None
    done: bool = False
    diverged: str | None = None

    def total_epochs(self) -> int:
        return total_epochs(self.spec.train, self.state)


def stack(batches: list[Batch], dims: dict[str, list[int]], rows: int, device) -> Batch:
    """Members' splits (n_k, ...) -> one (p, rows, ...) batch, each field padded to `dims` (its sizes
    after the row axis); rows past a member's own are pad rows (`rows` > every n_k)."""
    fields = {}
    for name, shape in dims.items():
        tensors = [getattr(batch, name) for batch in batches]
        fill = IGNORE_INDEX if name == "target" else 0
        out = torch.full((len(tensors), rows, *shape), fill, dtype=tensors[0].dtype)
        for k, tensor in enumerate(tensors):
            out[(k, *[slice(0, size) for size in tensor.shape])] = tensor
        fields[name] = out.to(device)
    for name in batches[0].SHARED:  # tables: each member's, padded with rows of padding to the largest (p, S, w)
        tables = [getattr(batch, name) for batch in batches]
        out = torch.zeros(len(tables), *[max(sizes) for sizes in zip(*(table.shape for table in tables))], dtype=tables[0].dtype)
        for k, table in enumerate(tables):
            out[(k, *[slice(0, size) for size in table.shape])] = table
        fields[name] = out.to(device)
    return type(batches[0])(**fields)


def common_dims(splits: list[Batch]) -> dict[str, list[int]]:
    """Per field, the largest size of each axis after the rows, over every member and split: one
    shape for all, so that training and evaluation each compile one graph."""
    return {name: [max(getattr(split, name).shape[i] for split in splits) for i in range(1, getattr(splits[0], name).dim())]
            for name in splits[0].tensors()}


def pad_to(tensor: torch.Tensor, shape) -> torch.Tensor:
    padded = tensor.new_zeros(shape)
    padded[tuple(slice(0, size) for size in tensor.shape)] = tensor
    return padded


def member_loss(model, params, buffers, batch: Batch, answers: torch.Tensor, precision: str = "float32", reduction: str = "sum"):
    """One member's objective (its summed loss, or its mean: TrainSpec.loss) and, as aux, the summed loss and per-row
    `wrong`. `answers`: the classes this member scores (a 0-d count); logits past them are padding."""
    out = output_of(lambda rows: functional_call(model, (params, buffers), (rows,)), batch, precision)
    logits = out.logits  # (b, V) or (b, t, V)
    columns = torch.arange(logits.shape[-1], device=logits.device)  # a model's logits may be wider than its classes
    logits = logits.masked_fill(columns >= answers, float("-inf"))  # answers past the member's own
    loss = F.cross_entropy(logits.flatten(0, -2), batch.target.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")
    loss = with_penalty(loss, out.penalty, batch.target)  # the model's extra term, as a lone run adds it (memnet.loop)
    wrong = ((logits.argmax(-1) != batch.target) & (batch.target != IGNORE_INDEX)).reshape(len(batch.target), -1).any(1)
    return loss / objective_divisor(batch.target, reduction), (loss.detach(), wrong)


def rows_of(data: Batch, index: torch.Tensor) -> Batch:
    """Rows `index` (p, b) of stacked data (p, n + 1, ...): (p, b, ...)."""
    members = torch.arange(index.shape[0], device=index.device)[:, None]
    return type(data)(**{name: value[members, index] for name, value in data.tensors().items()}, **data.shared())


def make_step(model, optimizer: str, clip_measure: str = "frobenius", noise_rule: str = "gaps", precision: str = "float32",
              reduction: str = "sum"):
    """The population's training step: gather each member's batch, add its noise, vmap(grad), clip, update
    (adamw: each member's weight decay (`decay`, (p,)) as torch.optim.AdamW's, lr * decay * weight, beside Adam's step;
    adam and adagrad: as torch.optim.Adam's and Adagrad's, decay * weight added to the gradient before its moments take it)."""
    gradients = vmap(grad(lambda *args: member_loss(model, *args, precision=precision, reduction=reduction), has_aux=True))

    def step(params, moments, buffers, train, index, count, gap, noisy, answers, lr, clip, decay, active, tables=None):
        batch = rows_of(train, index)  # (p, b, ...)
        if tables is not None:  # this step's own sentence tables (Population.step_tables): ids (p, b, m), rows (p, u, w)
            batch = dataclasses.replace(batch, sentence=tables[0], sentences=tables[1])
        if count is not None:  # random noise, drawn on the host side of the step by each member's generator
            time = noised_time(batch.time, batch.memory_mask, count, gap, noise_rule)  # (p, b, m)
            batch = dataclasses.replace(batch, time=torch.where(noisy[:, None, None], time, batch.time))
        grads, (loss, wrong) = gradients(params, buffers, batch, answers)
        active = active & torch.isfinite(loss)  # a diverged member stops changing; the others go on
        new_params, new_moments = {}, {}
        for name, value in params.items():
            g = grads[name]
            norm = gradient_norms(g, clip_measure)  # (p,) each member's gradient of this matrix (clip_each)
            scale = torch.where(clip > 0, clip_scale(norm, clip), torch.ones_like(norm))
            g = g * scale.view(-1, *[1] * (g.dim() - 1))
            step_size, penalty = lr.view(-1, *[1] * (g.dim() - 1)), decay.view(-1, *[1] * (g.dim() - 1))
            if optimizer == "adam":  # L2: the penalty's gradient joins the moments
                g, new_moments[name] = adam_direction(g + penalty * value, moments[name], active)
            elif optimizer == "adamw":  # decoupled: beside Adam's step
                g, new_moments[name] = adam_direction(g, moments[name], active)
                g = g + penalty * value
            elif optimizer == "adagrad":
                g, new_moments[name] = adagrad_direction(g + penalty * value, moments[name], active)
            new_params[name] = torch.where(active.view(-1, *[1] * (g.dim() - 1)), value - step_size * g, value)
        return new_params, new_moments, loss, wrong

    return step


def adam_direction(g, moment: dict, active):
    """torch.optim.Adam's update direction for each member (lr applied by the caller); its state only
    moves for active members."""
    (beta1, beta2), shape = ADAM_BETAS, (-1, *[1] * (g.dim() - 1))
    steps = moment["step"] + active.to(moment["step"].dtype)  # (p,)
    keep = active.view(shape)
    m = torch.where(keep, beta1 * moment["m"] + (1 - beta1) * g, moment["m"])
    v = torch.where(keep, beta2 * moment["v"] + (1 - beta2) * g * g, moment["v"])
    t = steps.clamp(min=1).view(shape)
    direction = (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt() + ADAM_EPS)
    return direction, {"m": m, "v": v, "step": steps}


def adagrad_direction(g, moment: dict, active):
    """torch.optim.Adagrad's update direction for each member (lr applied by the caller): the gradient over the root
    of its summed squares; the sums only move for active members."""
    keep = active.view(-1, *[1] * (g.dim() - 1))
    total = torch.where(keep, moment["sum"] + g * g, moment["sum"])
    return g / (total.sqrt() + ADAGRAD_EPS), {"sum": total, "step": moment["step"] + active.to(moment["step"].dtype)}


def make_forward(model, precision: str = "float32"):
    """Every member's summed loss (p,) and `wrong` (p, rows) on a (p, rows, ...) batch."""
    return vmap(lambda params, buffers, batch, answers: member_loss(model, params, buffers, batch, answers, precision)[1])


def evaluate_members(forward, params, buffers, split: Batch, answers) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed loss (p,) and `wrong` (p, rows) of every member over a stacked split, EVAL_ROWS rows at
    a time (one shape: one compiled graph)."""
    losses, wrongs = [], []
    for start in range(0, split.target.shape[1], EVAL_ROWS):
        rows = type(split)(**{k: v[:, start : start + EVAL_ROWS].contiguous() for k, v in split.tensors().items()}, **split.shared())
        loss, wrong = forward(params, buffers, rows, answers)
        losses.append(loss)
        wrongs.append(wrong)
    return torch.stack(losses).sum(0), torch.cat(wrongs, 1)


def compiled(fn, enabled: bool):
    """`torch.compile(fn)`, falling back to eager (with one line of warning) where compiling fails."""
    if not enabled:
        return fn
    fast, fallback = torch.compile(fn, dynamic=False), {"eager": False}

    def call(*args):
        if not fallback["eager"]:
            try:
                with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT, accumulated_recompile_limit=RECOMPILE_LIMIT):
                    return fast(*args)
            except Exception as error:  # no C compiler, an unsupported op, ...: the eager step is the same maths
                warnings.warn(f"torch.compile is unavailable here ({type(error).__name__}: {str(error).splitlines()[0][:120]}); "
                              "training eagerly", stacklevel=2)
                fallback["eager"] = True
        return fn(*args)

    return call


class Population:
    """The stacked state of a population's members (see the module docstring)."""

    def __init__(self, members: list[Member], device: torch.device, compile: bool):
        self.members, self.device = members, device
        first = members[0].spec
        self.config = first.train
        models = []
        for member in members:  # each member's model exactly as it would be built alone
            torch.manual_seed(member.spec.train.seed)
            models.append(build_model(first.model.name, first.model.config, member.data.sizes))
        self.template = models[0].to(device)
        names = [name for name, _ in models[0].named_parameters()]
        self.shapes = [{name: tuple(value.shape) for name, value in model.named_parameters()} for model in models]
        self.params = {name: torch.stack([pad_to(dict(model.named_parameters())[name].detach(),
                                                 [max(s[name][i] for s in self.shapes) for i in range(len(self.shapes[0][name]))])
                                          for model in models]).to(device) for name in names}
        self.buffers = {name: torch.stack([dict(model.named_buffers())[name] for model in models]).to(device)
                        for name, _ in models[0].named_buffers()}
        self.moments = {}
        if self.config.optimizer in ("adam", "adamw"):
            self.moments = {name: {"m": torch.zeros_like(value), "v": torch.zeros_like(value),
                                   "step": torch.zeros(len(members), device=device)} for name, value in self.params.items()}
        if self.config.optimizer == "adagrad":
            self.moments = {name: {"sum": torch.full_like(value, ADAGRAD_INITIAL), "step": torch.zeros(len(members), device=device)}
                            for name, value in self.params.items()}
        # a model may score more classes than the data has (MemN2N's release answers score its time words)
        classes = [getattr(model, "output_classes", member.data.sizes.num_classes) for model, member in zip(models, members)]
        self.answers = torch.tensor(classes, device=device)  # (p,)
        every = [member.data.splits[name] for member in members for name in ("train", "valid", "test")]
        dims = common_dims(every)
        self.splits, self.whole_tables = {}, None
        for name in ("train", "valid", "test"):  # at least one pad row; evaluation reads EVAL_ROWS at a time
            rows = math.ceil((max(len(member.data.splits[name]) for member in members) + 1) / EVAL_ROWS) * EVAL_ROWS
            stacked = stack([member.data.splits[name] for member in members], dims, rows, device)
            self.splits[name] = stacked.read_by(self.config.batch_size if name == "train" else EVAL_ROWS)
            if name == "train" and self.splits[name] is not stacked:  # the whole table is too large to pay: each step's own
                self.whole_tables = stacked.sentences  # (p, S, w)
        self.table_rows = 0  # rows of each step's own table (0: none); grows as a batch needs more (`step_tables`)
        self.step = compiled(make_step(self.template, self.config.optimizer, self.config.clip_measure, self.config.noise_rule,
                                       self.config.precision, self.config.loss), compile)
        self.forward = compiled(make_forward(self.template, self.config.precision), compile)

    # -- one member's state, in the single-run format (memnet.train.checkpoint), both ways ----------

    def step_tables(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Each member's table of only its batch's sentences (StoryBatch.with_step_tables) where the population reads
        no whole table: ids (p, b, m) and rows (p, u, w), or None. u is the most a batch has needed so far, rounded up
        to TABLE_ROUNDING, so the compiled step sees one or two sizes, not one a step."""
        if self.whole_tables is None:
            return None
        batch = rows_of(self.splits["train"], index)
        batched, needed = batch.with_step_tables(self.whole_tables, self.table_rows)
        if needed > self.table_rows:
            self.table_rows = math.ceil(needed / TABLE_ROUNDING) * TABLE_ROUNDING
            if self.table_rows >= batch.sentence[0].numel():  # as many rows as the batch has slots: reading the slots is cheaper
                self.whole_tables = None
                return None
            batched, _ = batch.with_step_tables(self.whole_tables, self.table_rows)
        return batched.sentence, batched.sentences

    def member_weights(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's weights, as its model's state dict (on the CPU, cut to its own shapes)."""
        return {name: self.params[name][k][tuple(slice(0, size) for size in shape)].detach().cpu().clone()
                for name, shape in self.shapes[k].items()}

    def set_member_weights(self, k: int, weights: dict[str, torch.Tensor]) -> None:
        for name, value in weights.items():
            self.params[name][(k, *[slice(0, size) for size in value.shape])] = value.to(self.device)

    def member_model(self, k: int):
        """Member k as a model of its own, with an optimizer holding its state."""
        member = self.members[k]
        model = build_model(member.spec.model.name, member.spec.model.config, member.data.sizes)
        model.load_state_dict(self.member_weights(k))
        optimizer = make_optimizer(member.spec.train, model)
        for name, parameter in model.named_parameters():
            moment, crop = self.moments.get(name), tuple(slice(0, size) for size in self.shapes[k][name])
            if moment is not None and moment["step"][k] > 0:  # torch's optimizer state: Adam's from its first step, AdaGrad's always
                optimizer.state[parameter] = {"step": moment["step"][k].detach().cpu(),
                                              **{torch_name: moment[ours][k][crop].detach().cpu().clone()
                                                 for ours, torch_name in OPTIMIZER_STATE.items() if ours in moment}}
        return model, optimizer

    def load_member(self, k: int, model, optimizer) -> None:
        for name, parameter in model.named_parameters():
            crop = (k, *[slice(0, size) for size in parameter.shape])
            self.params[name][crop] = parameter.detach().to(self.device)
            if self.moments and parameter in optimizer.state:
                saved = optimizer.state[parameter]
                for ours, torch_name in OPTIMIZER_STATE.items():
                    if ours in self.moments[name]:
                        self.moments[name][ours][crop] = saved[torch_name].to(self.device)
                self.moments[name]["step"][k] = float(saved["step"])

    def save(self, k: int) -> None:
        member = self.members[k]
        model, optimizer = self.member_model(k)
        save_torch(member.out / CHECKPOINT, checkpoint(member.spec, member.data, model, optimizer, member.shuffle,
                                                             member.noise, member.state))


def draws_for_epoch(population: Population, live: list[int], steps: int, b: int, rows: dict[int, int]):
    """Each member's noise draws for the epoch, from its own generator in the order a lone run draws
    them (a batch at a time; member k trains `rows[k]` rows this epoch): count (p, steps, b) and
    gap (p, steps, b, e), or (None, None)."""
    members, rule = population.members, population.config.noise_rule
    noisy = [k for k in live if members[k].spec.train.random_noise]
    if not noisy:
        return None, None
    e = max(noise_draws(members[k].data.sizes.memory_size, rule) for k in noisy)
    count = torch.zeros(len(members), steps, b, device=population.device)
    gap = torch.zeros(len(members), steps, b, e, device=population.device)
    for k in noisy:
        n = rows[k]
        for s in range(math.ceil(n / b)):
            size = min(b, n - s * b)
            c, g = draw_time_noise(members[k].noise, size, members[k].data.sizes.memory_size, population.device, rule)
            count[k, s, :size], gap[k, s, :size, : g.shape[1]] = c, g
    return count, gap


def train_population(members: list[Member], *, device: str = "auto", compile: bool = True, progress: bool = True,
                     checkpoint_seconds: float = 60.0) -> list[dict]:
    """Train the members as one population; each writes its own run folder. Returns their summaries
    (a member that diverged gives {"diverged": message})."""
    device = resolve_device(device)
    with ExitStack() as held:
        for member in members:
            refuse_other_work(member.out, member.spec, resume=True)
            held.enter_context(hold(member.out))
        todo = []
        for member in members:
            if (member.out / SUMMARY).exists():
                member.done = True
            else:
                todo.append(member)
        if todo:
            run_members(todo, device, compile, progress, checkpoint_seconds)
    return [{"diverged": m.diverged} if m.diverged else read_json(m.out / SUMMARY) for m in members]


def run_members(members: list[Member], device, compile: bool, progress: bool, checkpoint_seconds: float) -> None:
    population = Population(members, device, compile)
    engine = {"engine": "population", "members": len(members), "compiled": compile, "threads": torch.get_num_threads()}
    for k, member in enumerate(members):  # a lone run's start, or its resume from the checkpoint
        model, optimizer = population.member_model(k)
        member.shuffle = torch.Generator().manual_seed(member.spec.train.seed)
        member.noise = torch.Generator(device=device).manual_seed(member.spec.train.seed)
        member.state = restore(member.spec, member.out, member.data, model, optimizer, member.shuffle, member.noise,
                               device, member.preset, engine, member.identity)
        population.load_member(k, model, optimizer)
    trained = [k for k, member in enumerate(members) if member.state["epoch"] >= member.total_epochs()]
    if trained:  # stopped between their last checkpoint and their summary: nothing left to train
        for k in trained:
            members[k].done = True
        summarise_members(population, trained)
    b = population.config.batch_size
    total = sum(member.total_epochs() - member.state["epoch"] for member in members)
    bar = progress_bar(total, f"population of {len(members)}", enabled=progress, unit="epoch")
    last_save, first_step = time.perf_counter(), None
    while True:
        live = [k for k, member in enumerate(members) if not member.done]
        if not live:
            break
        started = time.perf_counter()
        rates, on, phases = [0.0] * len(members), torch.ones(len(members), dtype=torch.bool), {}
        perms, steps = {}, 0
        for k in live:
            member = members[k]
            phases[k] = phase_of(member.state)
            rates[k] = learning_rate(member.spec.train, member.state["epoch"], member.state["main_from"])
            on[k] = phases[k] == "softmax"
            perms[k] = epoch_order(len(member.data.splits["train"]), member.spec.train, member.shuffle)
            steps = max(steps, math.ceil(len(perms[k]) / b))
        pad_row = population.splits["train"].target.shape[1] - 1
        index = torch.full((len(members), steps * b), pad_row, dtype=torch.long)
        for k, perm in perms.items():
            index[k, : len(perm)] = perm
        count, gap = draws_for_epoch(population, live, steps, b, {k: len(perm) for k, perm in perms.items()})
        real = (index != pad_row).view(len(members), steps, b).any(-1)  # (p, steps): members with rows in this step
        index = index.view(len(members), steps, b).to(device)
        if "softmax_on" in population.buffers:
            population.buffers["softmax_on"] = on.to(device)
        noisy = torch.tensor([m.spec.train.random_noise for m in members], device=device)
        clip = torch.tensor([m.spec.train.clip_norm for m in members], device=device)
        lr, real = torch.tensor(rates, device=device), real.to(device)
        decay = torch.tensor([weight_decay(m.spec.train, m.state["epoch"]) for m in members], device=device)
        loss_sum = torch.zeros(len(members), device=device)
        wrong_sum = torch.zeros(len(members), device=device)
        for s in range(steps):
            t0 = time.perf_counter()
            population.params, population.moments, loss, wrong = population.step(
                population.params, population.moments, population.buffers, population.splits["train"], index[:, s].contiguous(),
                None if count is None else count[:, s].contiguous(), None if gap is None else gap[:, s].contiguous(), noisy,
                population.answers, lr, clip, decay, real[:, s].contiguous(),  # contiguous: one stride, one compiled graph
                population.step_tables(index[:, s]))
            if first_step is None:
                first_step = time.perf_counter() - t0  # compiling, mostly
                if compile:
                    print(f"population of {len(members)}: first step (compiling) took {first_step:.1f} s", file=sys.stderr)
                for k in live:  # in the record, so that a benchmark can say how much of its time was compiling
                    before = members[k].state.get("population", {}).get("first_step_seconds", 0.0)  # a resume compiles again
                    members[k].state["population"] = {"members": len(members), "first_step_seconds": before + round(first_step, 2)}
            loss_sum += loss
            wrong_sum += wrong.sum(1)
        valid_loss, valid_wrong = evaluate_members(population.forward, population.params, population.buffers,
                                           population.splits["valid"], population.answers)
        valid_loss, valid_wrong = valid_loss.cpu(), valid_wrong.cpu()
        loss_sum, wrong_sum = loss_sum.cpu(), wrong_sum.cpu()
        seconds = (time.perf_counter() - started) / len(live)  # each live member's share of the epoch
        for k in live:
            planned = members[k].total_epochs()
            finish_epoch(population, k, phases[k], rates[k], float(loss_sum[k]), float(wrong_sum[k]),
                         float(valid_loss[k]), valid_wrong[k], seconds, trained=len(perms[k]))
            bar.total -= planned - members[k].total_epochs()  # a member stopped early (`patience`)
            bar.update(1)
        finished = [k for k in live if members[k].done and not members[k].diverged]
        if finished:
            summarise_members(population, finished)
        bar.set_postfix(live=len(live), loss=f"{float(loss_sum[live].sum()) / sum(len(perms[k]) for k in live):.3f}",
                        valid_err=f"{100 * float(valid_wrong[live].sum()) / sum(len(members[k].data.splits['valid']) for k in live):.1f}%")
        if time.perf_counter() - last_save > checkpoint_seconds:
            for k in live:
                if not members[k].diverged:
                    population.save(k)
            last_save = time.perf_counter()
    bar.close()


def finish_epoch(population: Population, k: int, phase: str, lr: float, train_loss: float, train_wrong: float,
                 valid_loss: float, valid_wrong: torch.Tensor, seconds: float, trained: int | None = None) -> None:
    """A member's end of epoch, as a lone run has it (memnet.train.train_held); `trained`: the rows
    it trained on this epoch (batches drawn with replacement need not cover the split once)."""
    member = population.members[k]
    config, state = member.spec.train, member.state
    n_train, n_valid = trained or len(member.data.splits["train"]), len(member.data.splits["valid"])
    epoch = state["epoch"]
    if not math.isfinite(train_loss):
        member.diverged = divergence(member.out, f"loss became {train_loss}", epoch, config.seed)
        member.done = True
        print(f"member diverged and is left out: {member.diverged}", file=sys.stderr)
        return
    valid_loss, valid_error = valid_loss / n_valid, valid_wrong[:n_valid].sum().item() / n_valid
    if end_epoch(config, state, phase, valid_loss, valid_error, seconds) and config.keep == "best-valid":
        state["best_weights"] = population.member_weights(k)
    append_epoch(member.out, epoch_line(epoch, phase, lr, train_loss / n_train, train_wrong / n_train, valid_loss, valid_error,
                                       seconds))
    member.done = state["epoch"] >= member.total_epochs()


def summarise_members(population: Population, finished: list[int]) -> None:
    """summary.json and the last checkpoint of the members that finished this epoch (all members are
    evaluated at once: one compiled graph; the others' numbers are not used). A finished member trains no more, so
    one that keeps its best epoch's weights (`keep="best-valid"`) has them put back in its place first."""
    for k in finished:
        member = population.members[k]
        if member.spec.train.keep == "best-valid" and "best_weights" in member.state:
            population.set_member_weights(k, member.state["best_weights"])
    wrongs = {name: evaluate_members(population.forward, population.params, population.buffers, population.splits[name],
                             population.answers)[1].cpu()
              for name in ("test", "valid", "train")}
    for k in finished:
        member = population.members[k]
        errors = {name: percent_by_task(wrong[k, : len(member.data.splits[name])], member.data.splits[name].to("cpu"))
                  for name, wrong in wrongs.items()}
        population.save(k)
        record = summary_record(errors, member.spec.train, population.device, member.state)
        if "population" in member.state:  # its population's size and first steps (a resumed run compiles again)
            record["population"] = member.state["population"]
        write_summary(member.out, record)
