"""A run is its spec: what to train, on which data, and how, in one typed and validated object.

    RunSpec
      task   TaskSpec   which task (`babi:1-3`, `temporal:hard`, `reverse`), data dir, variant, memory size
      model  ModelSpec  a name in memnet.models.MODELS and that model's config (typed fields with ranges)
      train  TrainSpec  epochs, optimizer, learning-rate schedule, clipping, linear start, noise, seed

Sizes read from the data (vocabulary, memory slots, ...) are not part of the spec: they are derived
when the data is loaded (`memnet.batches.DataSizes`), recorded beside the spec, and no option can
overwrite them. Where to run (device, wandb, progress bars) is not part of it either: it does not
change what a run computes.

One precedence rule, here and nowhere else (`resolve`):

    the model's and the loop's defaults  <  a preset (or a --from config)  <  options given on the command line

Every check runs before any work: a wrong type, a value out of range or an unknown key raises
`SpecError`, one line naming the field and what it allows.
"""

import dataclasses
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from memnet.batches import DataSizes
from memnet.models import LINEAR_START, MODELS, READS
from memnet.presets import PRESETS

STRICT = ConfigDict(extra="forbid")
STORY_FAMILIES = ("babi",)  # tasks whose examples are stories with a time index (random noise applies)
SEQUENCE_FAMILIES = ("temporal", "copy", "reverse", "sort")
# the kind of data each task family gives (its batch type in memnet.batches), matched against memnet.models.READS
FAMILY_DATA = {"babi": "stories", "temporal": "sequences", "copy": "pairs", "reverse": "pairs", "sort": "pairs"}
DATA_KINDS = {"stories": "stories (bAbI)", "sequences": "sequences to classify (temporal order)",
              "pairs": "sequence-to-sequence pairs (copy, reverse, sort)"}
# what says where a run's data lives, not what the run is: a moved data folder still resumes
NOT_IDENTITY = ("task.data_dir", "task.test_data_dir")
DERIVED = {field.name for field in dataclasses.fields(DataSizes)}  # sizes the data decides; no option sets them


class SpecError(ValueError):
    """A spec that cannot run, with a one-line message for the user."""


@dataclass(frozen=True, config=STRICT)
class TaskSpec:
    name: str  # FAMILY:ARG: babi:2, babi:1-3,6, babi:all (joint); temporal:hard; copy, reverse, sort
    data_dir: str | None = None  # bAbI: folder holding en/, en-10k/, ... (None: $MEMNET_DATA, else the cache)
    variant: str = "en"  # bAbI: folder of the archive, en, en-10k, en-valid, ...
    test_data_dir: str | None = None  # bAbI: read the test split from this data dir instead, in the training
    # vocabulary (train on generated stories, test on the real ones: scripts/faithfulness.py); None: data_dir
    memory_size: Annotated[int, Field(ge=1)] = 50  # bAbI: most recent sentences kept (Sukhbaatar et al. 2015, sec. 4.2)

    def __post_init__(self):
        family, _, arg = self.name.partition(":")
        if family not in STORY_FAMILIES + SEQUENCE_FAMILIES:
            raise ValueError(f"unknown task family {family!r}; choose one of {', '.join(STORY_FAMILIES + SEQUENCE_FAMILIES)}")
        if family == "babi":
            from tasks.babi import parse_task_list

            parse_task_list(arg)  # raises with the allowed forms

    @property
    def family(self) -> str:
        return self.name.partition(":")[0]


@dataclass(frozen=True, config=STRICT)
class TrainSpec:
    epochs: Annotated[int, Field(ge=1)] = 100  # epochs of the main schedule (after any linear start)
    batch_size: Annotated[int, Field(ge=1)] = 32
    optimizer: Literal["sgd", "adam", "adamw", "adagrad"] = "sgd"  # "sgd" as in the paper; "adamw": Adam with decoupled
    # weight decay; "adagrad": AdaGrad (Duchi et al. 2011) as the query-reduction network trains (memnet.loop.make_optimizer)
    weight_decay: Annotated[float, Field(ge=0)] = 0.0  # adamw: each step shrinks every weight by lr * weight_decay
    # (Loshchilov & Hutter 2019, as torch.optim.AdamW given all of the model's parameters); adam and adagrad: an L2
    # penalty, weight_decay * weight added to each gradient (torch.optim.Adam's and Adagrad's; QRN's 0.001 of
    # tf.nn.l2_loss, sec. 5.1)
    weight_decay_from: Annotated[int, Field(ge=0)] = 0  # the epoch (from 0, any linear start counted) whose steps
    # first take weight_decay; before it, none. From the first step, QRN's L2 penalty holds its yes/no tasks (17, 18)
    # at chance while it stops tasks 3, 7 and 14 from learning their training set by heart (results/babi-1k-qrn-tune*)
    loss: Literal["sum", "mean"] = "sum"  # what a step minimises: the cross-entropy summed over its batch, as the MemN2N
    # release (the paper's lr 0.01 and clipping at 40 are for it), or averaged over the batch's targets, as the
    # query-reduction network's code (tf.reduce_mean; its AdaGrad lr 0.5 is for that). Recorded losses are per example either way
    lr: Annotated[float, Field(gt=0)] = 0.01
    lr_halve_every: Annotated[int, Field(ge=0)] = 25  # epochs between halvings of lr; 0 keeps it constant (joint: 15)
    lr_halve_at_multiples: bool = False  # count the main schedule's epochs from 1 and halve lr at the start of each
    # whose number is a multiple of lr_halve_every, as the release's `mod(ep, 25) == 0` (train.m): the first halving
    # comes after 24 epochs, not 25
    batch_sampling: Literal["permutation", "replacement"] = "permutation"  # "permutation": each question once an
    # epoch; "replacement": the release's floor(N / batch_size) batches of questions drawn with replacement
    clip_norm: Annotated[float, Field(ge=0)] = 40.0  # max gradient norm of each weight matrix; 0 turns clipping off
    clip_measure: Literal["frobenius", "spectral"] = "frobenius"  # the norm clip_norm bounds: the matrix's Frobenius
    # norm, or its largest singular value (the release's MATLAB norm() of a matrix, Weight.m)
    linear_start: Annotated[int, Field(ge=0)] = 0  # epochs trained with the softmax removed first; 0 = off
    linear_start_lr: Annotated[float, Field(gt=0)] = 0.005  # the paper's linear-start learning rate
    linear_start_until: Literal["epochs", "plateau"] = "epochs"  # "plateau": end linear start once valid loss stops falling
    random_noise: bool = False  # insert up to 10% empty memories in the time index while training
    noise_rule: Literal["gaps", "release"] = "gaps"  # random noise: "gaps" drops each empty memory into a random gap
    # of the timeline; "release": times are the first n values of a permutation of n + k, sorted (batches.release_noisy_time)
    precision: Literal["float32", "bfloat16"] = "float32"  # "bfloat16": forward and backward under torch.autocast
    # (matmuls and their kin in bfloat16; parameters, gradients, clipping, updates and the loss in float32)
    keep: Literal["last", "best-valid"] = "last"  # the weights a run's summary measures (test, valid and train error)
    # and its last checkpoint holds: the last epoch's, or those of the main schedule's epoch (after any linear start) with
    # the lowest validation error (ties: the lower validation loss), as the query-reduction network's code restores
    # its best checkpoint before testing
    patience: Annotated[int, Field(ge=0)] = 0  # stop once this many epochs pass without a new lowest validation error
    # (ties: a lower loss); 0 trains every epoch. The query-reduction network's code: 50 (5 checks, one each 10 epochs)
    seed: Annotated[int, Field(ge=0)] = 0  # model init, batch order and noise: same seed, same run

    def __post_init__(self):
        if self.weight_decay and self.optimizer == "sgd":
            raise ValueError("weight_decay applies to optimizers adam, adamw and adagrad only; this run's optimizer is sgd")
        if self.weight_decay_from and not self.weight_decay:
            raise ValueError("weight_decay_from sets when weight decay starts; this run's weight_decay is 0")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str  # a key of memnet.models.MODELS
    config: object  # that model's config dataclass, validated

    def options(self) -> dict:
        return dataclasses.asdict(self.config)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    task: TaskSpec
    model: ModelSpec
    train: TrainSpec

    def to_dict(self) -> dict:
        return {"task": dataclasses.asdict(self.task), "model": {"name": self.model.name, "options": self.model.options()},
                "train": dataclasses.asdict(self.train)}

    @classmethod
    def from_dict(cls, spec: dict, where: str = "spec") -> "RunSpec":
        """The spec stored in a config.json (checked as if typed anew)."""
        try:
            model = spec["model"]
            return build(model["name"], model["options"], spec["train"], spec["task"])
        except (KeyError, TypeError) as error:
            raise SpecError(f"{where} is not a memnet run spec (missing {error})") from None

    def with_seed(self, seed: int) -> "RunSpec":
        return dataclasses.replace(self, train=dataclasses.replace(self.train, seed=seed))


def explain(error: ValidationError, section: str, valid_keys: list[str]) -> str:
    """pydantic's errors as one line: `section.field: what is wrong (allowed ...)`."""
    parts = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"] if not isinstance(part, int)) or "(all)"
        where = f"{section}.{field}"
        if field in DERIVED and section.startswith("model"):
            hint = " (--memory-size sets the sentences a story keeps)" if field == "memory_size" else ""
            parts.append(f"{where}: read from the data, not an option{hint}")
        elif item["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            parts.append(f"{where}: unknown option; valid options are {', '.join(valid_keys)}")
        elif item["type"] in ("missing_argument", "missing"):
            parts.append(f"{where}: required")
        elif item["type"] in ("value_error", "assertion_error"):
            parts.append(f"{section}: {str(item['ctx'].get('error', item['msg']))}")
        else:
            parts.append(f"{where}: {item['msg'].removeprefix('Input ')} (got {item['input']!r})")
    return "; ".join(parts)


def validated(kind, values: dict, section: str):
    """An instance of the pydantic dataclass `kind` from `values`, or SpecError naming the field."""
    fields = [field.name for field in dataclasses.fields(kind)]
    try:
        return TypeAdapter(kind).validate_python(values)
    except ValidationError as error:
        raise SpecError(explain(error, section, fields)) from None
    except ValueError as error:  # a cross-field rule of the dataclass
        raise SpecError(f"{section}: {error}") from None


def check_reads(model: str, task: TaskSpec) -> None:
    """Refuse a model that cannot read the task's kind of data, naming the models that can."""
    kind = FAMILY_DATA[task.family]
    if kind not in READS[model]:
        readers = [name for name in MODELS if kind in READS[name]]
        reads = " and ".join(DATA_KINDS[own] for own in READS[model])
        choose = readers[0] if len(readers) == 1 else f"{', '.join(readers[:-1])} or {readers[-1]}"
        raise SpecError(f"{model} reads {reads}; task {task.name!r} gives {DATA_KINDS[kind]}: use --model {choose}")


def build(model: str, model_options: dict, train_options: dict, task_options: dict) -> RunSpec:
    """A RunSpec from plain values; every field checked, then the rules that span sections."""
    if model not in MODELS:
        raise SpecError(f"model: unknown model {model!r}; choose one of {', '.join(MODELS)}")
    task = validated(TaskSpec, task_options, "task")
    check_reads(model, task)
    spec = RunSpec(task=task,
                   model=ModelSpec(model, validated(MODELS[model][0], model_options, f"model {model}")),
                   train=validated(TrainSpec, train_options, "train"))
    if spec.train.random_noise and spec.task.family not in STORY_FAMILIES:
        raise SpecError(f"train.random_noise: moves the time index of story memories; task {spec.task.name} has none")
    if spec.train.linear_start and model not in LINEAR_START:
        raise SpecError(f"train.linear_start: removes a memory softmax; model {model} has none "
                        f"(models with one: {', '.join(sorted(LINEAR_START))})")
    return spec


def resolve(model: str, preset: str | None = None, model_options: dict | None = None, train_options: dict | None = None,
            task_options: dict | None = None, base: RunSpec | None = None) -> RunSpec:
    """THE precedence rule: defaults < preset (or `base`, a spec read with --from) < options given here."""
    if preset and base:
        raise SpecError("--preset and --from both set the whole spec; give one of them")
    if preset and preset not in PRESETS:
        raise SpecError(f"preset: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if base:
        start = base.to_dict()
        layers = {"model": start["model"]["options"], "train": start["train"], "task": start["task"]}
        model = model or base.model.name
        if model != base.model.name:
            raise SpecError(f"model: --from holds a {base.model.name} run; --model {model} cannot change it")
    else:
        chosen = PRESETS[preset] if preset else {}
        layers = {"model": dict(chosen.get("model", {})), "train": dict(chosen.get("train", {})), "task": {}}
    return build(model, {**layers["model"], **(model_options or {})}, {**layers["train"], **(train_options or {})},
                 {**layers["task"], **(task_options or {})})


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def field_defaults(spec: dict) -> dict:
    """The flattened default of every field a spec dict may hold: a field added to the spec after a
    record was written reads, in that record, as its default (the run did what the default does)."""
    defaults = {f"train.{field.name}": field.default for field in dataclasses.fields(TrainSpec)}
    defaults.update({f"task.{field.name}": field.default for field in dataclasses.fields(TaskSpec)})
    model = spec.get("model")
    if isinstance(model, dict) and model.get("name") in MODELS:
        defaults.update({f"model.options.{field.name}": field.default for field in dataclasses.fields(MODELS[model["name"]][0])})
    return {key: value for key, value in defaults.items() if value is not dataclasses.MISSING}


def differences(stored: dict, requested: dict) -> list[str]:
    """`field: stored -> requested` for every field that differs (where the data lives aside); a field
    the stored spec lacks (it was added later) counts as its default."""
    new = flatten(requested)
    old = {key: value for key, value in field_defaults(requested).items() if key in new} | flatten(stored)
    return [f"{key}: {old.get(key, '(absent)')!r} -> {new.get(key, '(absent)')!r}"
            for key in sorted(set(old) | set(new)) if key not in NOT_IDENTITY and old.get(key) != new.get(key)]
