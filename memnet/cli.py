"""The `memnet` command: train models, get and look at data, run the demo and benchmarks, inspect runs."""

import argparse
import dataclasses
import json
import shlex
import signal
import sys
import threading
from pathlib import Path

from memnet.models import MODELS
from memnet.presets import DEFAULT_PRESETS, PRESETS, default_preset
from memnet.report import add_report_parser
from memnet.run_record import CONFIG
from memnet.serve import add_serve_parser
from memnet.spec import TrainSpec
from tasks.babi import parse_task_list

# typed model flags: the options most runs set (any other field: -o KEY=VALUE); `dim` is every model's embedding size
MODEL_FLAGS = {"hops": "memory hops (memn2n; default 3)", "dim": "embedding size (memn2n: 20, joint presets 50)",
               "encoding": "memn2n sentence encoding: position (the paper's), bow, position-release (the official release's)",
               "tying": "memn2n weight tying: adjacent (default) or layerwise"}
MODEL_SWITCHES = {"relu": "ReLU between hops (memn2n, layerwise tying only)", "temporal": "temporal encoding (memn2n, attentive; default on)"}


def read_value(text):
    """A flag's text read as JSON when it parses (numbers, true/false), else kept as a string: `--dim 6`
    and `-o dim=6` give the same 6, and the spec checks the type."""
    if not isinstance(text, str):
        return text  # a switch's True/False
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_option(text: str) -> tuple[str, object]:
    """KEY=VALUE, the value read by `read_value`."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.replace("-", "_"), read_value(value)


DATA_DIR_HELP = "folder holding en/, en-10k/, ... (default: $MEMNET_DATA, else the download cache)"


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help=DATA_DIR_HELP)
    parser.add_argument("--variant", help="folder of the archive: en, en-10k, en-valid, hn, ... (default: en)")


def add_spec_flags(parser: argparse.ArgumentParser) -> None:
    """The model and training flags, spelled the same for `train` and `bench`; none has a default here,
    so what is not given comes from the preset, else the defaults (memnet.spec.resolve)."""
    parser.add_argument("--memory-size", help="bAbI: most recent sentences kept in memory (default: 50)")
    model = parser.add_argument_group("model options (checked against the model's config)")
    for name, text in MODEL_FLAGS.items():
        model.add_argument("--" + name, help=text)
    for name, text in MODEL_SWITCHES.items():
        model.add_argument("--" + name, action=argparse.BooleanOptionalAction, help=text)
    model.add_argument("--option", "-o", action="append", type=parse_option, default=[], metavar="KEY=VALUE",
                       help="any field of the model's config, e.g. -o hidden=64 (JSON values: 3, 0.5, true)")
    train = parser.add_argument_group("training options")
    for field in dataclasses.fields(TrainSpec):
        flag = "--" + field.name.replace("_", "-")
        if field.type is bool:
            train.add_argument(flag, action=argparse.BooleanOptionalAction, help=f"(default {field.default})")
        else:  # read as text: the spec checks type and range and names the field when they are wrong
            train.add_argument(flag, help=f"(default {field.default})")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to train (default: a GPU when present)")
    parser.add_argument("--wandb", action="store_true", help="log metrics to wandb (offline unless you configured it)")


def given_options(args) -> dict:
    """{"model": ..., "train": ..., "task": ...}: only the options this command line gives."""
    model = {name: read_value(getattr(args, name)) for name in [*MODEL_FLAGS, *MODEL_SWITCHES] if getattr(args, name) is not None}
    model.update(dict(args.option))
    train = {f.name: read_value(getattr(args, f.name)) for f in dataclasses.fields(TrainSpec) if getattr(args, f.name) is not None}
    task = {"memory_size": read_value(args.memory_size)} if args.memory_size is not None else {}
    return {"model": model, "train": train, "task": task}


def read_spec(path: str):
    """The spec of a run folder or its config.json (`--from`)."""
    from memnet.records import RecordError, read_json
    from memnet.spec import RunSpec, SpecError

    config = Path(path) / CONFIG if Path(path).is_dir() else Path(path)
    if not config.exists():
        raise SpecError(f"--from: {config} does not exist; give a run folder or its config.json")
    try:
        stored = read_json(config, hint="give another run's folder, or restore the file from a copy")
    except RecordError as error:
        raise SpecError(f"--from: {error}") from None
    if "spec" not in stored:
        raise SpecError(f"--from: {config} holds no run spec (written by an older memnet?)")
    return RunSpec.from_dict(stored["spec"], where=str(config))


PRESET_HELP = ("named settings: " + ", ".join(sorted(PRESETS)) + ". Default: the model's own, " +
               "; ".join(f"{model} {per_task} ({joint} for several bAbI tasks)" for model, (per_task, joint) in DEFAULT_PRESETS.items()) +
               "; other models: the spec's defaults. The paper's text: --preset paper (paper-joint)")


def is_joint(task: str) -> bool:
    """Whether a task name asks for joint training: one model on several bAbI tasks (`babi:all`, `babi:1-3`)."""
    family, _, arg = task.partition(":")
    try:
        return family == "babi" and len(parse_task_list(arg)) > 1
    except ValueError:
        return False  # the spec names what is wrong with the task list


def add_train_parser(commands) -> None:
    parser = commands.add_parser("train", help="train a model on a task and write a run directory",
                                 description="Train a model; writes config.json, metrics.jsonl, checkpoint.pt and summary.json to --out. "
                                             "Options: defaults < --preset (or --from) < flags given.")
    parser.add_argument("--model", choices=sorted(MODELS), help="which model (default: memn2n)")
    parser.add_argument("--task", help="babi:2, babi:1-3,6, babi:all (joint); temporal:easy..nightmare; copy, reverse, sort (seq2seq)")
    parser.add_argument("--out", required=True, help="run directory to write")
    parser.add_argument("--from", dest="from_run", metavar="RUN", help="run the spec of RUN (a run folder or its config.json) again; flags given change it")
    add_data_flags(parser)
    parser.add_argument("--preset", help=PRESET_HELP)
    add_spec_flags(parser)
    parser.add_argument("--repeats", type=int, default=1, help="train N seeds, keep the lowest validation error")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run in --out (its spec must match)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_train)


def run_train(args) -> None:
    from memnet.spec import SpecError, resolve
    from memnet.train import train_repeats

    base = read_spec(args.from_run) if args.from_run else None
    if not base and not args.task:
        raise SpecError("--task is required (or --from RUN to run a recorded spec again)")
    options = given_options(args)
    task = {**options["task"], **{key: value for key, value in
                                  {"name": args.task, "data_dir": args.data_dir, "variant": args.variant}.items() if value is not None}}
    model = args.model or ("memn2n" if not base else None)
    preset = args.preset or (None if base else default_preset(model, is_joint(task.get("name", ""))))
    spec = resolve(model, preset, options["model"], options["train"], task, base)
    summary = train_repeats(spec, args.out, args.repeats, resume=args.resume, progress=not args.quiet, device=args.device,
                            use_wandb=args.wandb, preset=preset)
    errors = ", ".join(f"task {task}: {error}%" for task, error in summary["test_error"].items() if task != "all")
    print(f"test error {summary['test_error']['all']}%" + (f" ({errors})" if errors else "") + f"; records in {args.out}")


def add_data_parser(commands) -> None:
    parser = commands.add_parser("data", help="get, generate and describe task data")
    sources = parser.add_subparsers(dest="source", required=True, metavar="{babi,generate}")
    babi = sources.add_parser("babi", help="the official bAbI tasks: download, statistics",
                              description="Download the official bAbI archive, or describe a folder of it.")
    add_data_flags(babi)
    babi.add_argument("--download", action="store_true", help="fetch and unpack the official archive into the cache")
    babi.add_argument("--stats", action="store_true", help="per task: questions per split, vocabulary, longest story and sentence")
    babi.add_argument("--json", action="store_true", help="print the statistics as JSON")
    babi.add_argument("--tasks", default="all", help="which tasks: all, 2, 1-3,6 (default all)")
    babi.set_defaults(run=run_data_babi, variant="en")
    generate = sources.add_parser("generate", help="write bAbI-style tasks from our own world simulator (no download)",
                                  description="Writes OUT/en/qaN_<name>_{train,valid,test}.txt in the official format.")
    generate.add_argument("--out", required=True, help="data dir to write (then use it as --data-dir)")
    generate.add_argument("--tasks", default="all", help="all, 2, 1-3,6 (default all)")
    generate.add_argument("--questions", type=int, default=1000, help="questions in train and in test; valid gets a tenth")
    generate.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    generate.add_argument("--variant", default="en", help="folder name under --out (default en)")
    for knob, text in [("questions-per-story", "questions asked per story (default: as in bAbI)"),
                       ("gap", "statements between questions; raise it for longer stories (default 2)"),
                       ("actors", "people a story draws from"), ("locations", "places"), ("objects", "portable objects"),
                       ("distractors", "extra facts no question needs, per story (tasks 4, 15-19)")]:
        generate.add_argument("--" + knob, type=int, help=text)
    generate.set_defaults(run=run_data_generate)


def run_data_babi(args) -> None:
    from tasks.babi import parse_task_list
    from tasks.paths import resolve_data_dir
    from tasks.stats import babi_stats, stats_table

    if args.download:
        from tasks.download import download_babi

        print(f"bAbI data ready in {download_babi()}")
    if args.stats or args.json:
        rows, problems = babi_stats(args.data_dir, args.variant, parse_task_list(args.tasks))
        print(json.dumps(rows, indent=1) if args.json else f"{resolve_data_dir(args.data_dir) / args.variant}\n{stats_table(rows)}")
        for problem in problems:
            print(f"missing: {problem}", file=sys.stderr)
    elif not args.download:
        print("nothing to do: add --download and/or --stats (see memnet data babi --help)", file=sys.stderr)


def add_bench_parser(commands) -> None:
    parser = commands.add_parser("bench", help="train a grid of models on bAbI and write result tables",
                                 description="Train models x tasks x data sizes x modes x seeds; resumable; writes results/NAME/. "
                                             "Model and training flags apply to every run, on top of each model's preset.")
    parser.add_argument("--name", required=True, help="folder under --results for this benchmark")
    parser.add_argument("--models", help="comma list of MODEL[:PRESET], e.g. memn2n:pe-ls-rn,lstm:baseline; a model without a "
                                         "preset starts from its default (memn2n: release, per mode). Default: memn2n, or "
                                         "the models of the existing benchmark --name")
    parser.add_argument("--tasks", default="all", help="all, 2, 1-3,6 (default all)")
    parser.add_argument("--variants", default="en", help="comma list of data folders: en, en-10k (default en)")
    parser.add_argument("--modes", default="per-task", help="comma list: per-task, joint (default per-task)")
    parser.add_argument("--repeats", type=int, default=1, help="seeds per task, from --seed on; the table keeps the best by valid error")
    parser.add_argument("--data-dir", help=DATA_DIR_HELP)
    parser.add_argument("--results", default="results", help="where benchmark folders go (default results/)")
    parser.add_argument("--workers", type=int, help="parallel runs on CPU (default: one per core; with --engine ray and no "
                                                    "--address, the CPUs of the Ray instance started here)")
    parser.add_argument("--extend", action="store_true", help="add models, tasks, data, modes or seeds to an existing benchmark (same options)")
    parser.add_argument("--engine", default="population", choices=["population", "local", "ray"],
                        help="population (default): runs that can share one train as one compiled population; local: every run alone, "
                             "a process each; ray: the population engine's units as Ray tasks (pip install 'memnet[ray]')")
    parser.add_argument("--address", help="with --engine ray: the Ray cluster, HOST:PORT of its head or auto (the one this "
                                          "machine joined); without it, a Ray instance is started on this machine")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                        help="compile population steps with torch.compile (default; falls back to eager where it cannot)")
    add_spec_flags(parser)
    parser.set_defaults(run=run_bench)


def run_bench(args) -> None:
    from memnet.bench import run_bench as bench

    grid = {"models": args.models.split(",") if args.models else None, "tasks": args.tasks, "variants": args.variants.split(","),
            "modes": args.modes.split(","), "repeats": args.repeats}
    options = given_options(args)
    spelled = " ".join(shlex.quote(word) for word in sys.argv[1:] if word)  # shown when a re-run's options differ
    bench(args.name, grid, options, data_dir=args.data_dir, results=args.results, workers=args.workers, device=args.device,
          use_wandb=args.wandb, extend=args.extend, command_options=spelled, engine=args.engine, compile=args.compile,
          address=args.address)


def add_inspect_parser(commands) -> None:
    parser = commands.add_parser("inspect", help="show a trained run's attention over story sentences",
                                 description="Print per-hop attention over a story (per layer, per step: as the model names its "
                                             "rows); write it as HTML or PNG; or measure how often each hop attends to a "
                                             "supporting fact (--report).")
    parser.add_argument("run_dir", help="a run directory written by memnet train (or a folder of its repeats)")
    parser.add_argument("--split", default="test", choices=["train", "valid", "test"])
    parser.add_argument("--index", type=int, help="which example of the split")
    parser.add_argument("--task", type=int, help="only examples of this bAbI task")
    parser.add_argument("--wrong", action="store_true", help="only examples the model gets wrong")
    parser.add_argument("--count", type=int, help="how many examples to show (default 1; with --html 5)")
    parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML page")
    parser.add_argument("--png", metavar="FILE", help="write a heatmap of the first example")
    parser.add_argument("--report", action="store_true", help="per task and hop: how often the top sentence is a supporting fact (a hop on the empty memories is a miss)")
    parser.add_argument("--data-dir", help="read the task data from here instead of where the run was trained")
    parser.set_defaults(run=run_inspect)


def run_inspect(args) -> None:
    from memnet.inspection import attend, choose, load_run, render_html, render_png, render_terminal, run_report
    from memnet.records import check_output_file, write_atomic

    from memnet.batches import Seq2SeqBatch

    for path, flag, example in [(args.html, "--html", "attention.html"), (args.png, "--png", "attention.png")]:
        if path:
            check_output_file(path, flag, example)  # before the model and data load
    run = load_run(args.run_dir, args.data_dir)
    if isinstance(run.data.splits[args.split], Seq2SeqBatch):  # a seq2seq run: alignments instead of attention over sentences
        from memnet.inspection import align, render_alignment, render_alignment_png

        example = align(run, args.split, args.index or 0)
        print(render_alignment(example))
        if args.png:
            render_alignment_png(example, args.png)
            print(f"wrote {args.png}")
        return
    if args.report:
        run_report(run, args.split)
        return
    count = args.count or (5 if args.html else 1)
    examples = attend(run, args.split, choose(run, args.split, args.index, args.task, args.wrong, count))
    for example in examples:
        print(render_terminal(example) + "\n")
    if args.html:
        write_atomic(args.html, render_html(examples, f"{run.data.name}: {run.path}"))
        print(f"wrote {args.html}")
    if args.png:
        render_png(examples[0], args.png)
        print(f"wrote {args.png}")


def add_demo_parser(commands) -> None:
    parser = commands.add_parser("demo", help="generate tasks, train a memory network and an LSTM, show attention (~2 min, CPU)",
                                 description="Runs offline: generates bAbI-style tasks 1, 2 and 6, trains MemN2N and the LSTM "
                                             "baseline on each, prints their test errors and one story's per-hop attention.")
    parser.add_argument("--out", help="where records go (default runs/demo-DATE-TIME)")
    parser.add_argument("--questions", type=int, default=1000, help="questions per split and task (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run_demo)


def run_demo(args) -> None:
    from memnet.demo import run_demo as demo

    demo(args.out, args.questions, args.seed, not args.quiet)


def run_data_generate(args) -> None:
    from tasks.babi import parse_task_list
    from tasks.generator import GeneratorConfig, generate_babi

    knobs = {name: getattr(args, name) for name in ("questions_per_story", "gap", "actors", "locations", "objects", "distractors")
             if getattr(args, name) is not None}
    paths = generate_babi(args.out, parse_task_list(args.tasks), GeneratorConfig(questions=args.questions, seed=args.seed, **knobs),
                          variant=args.variant)
    print(f"wrote {len(paths)} files to {Path(args.out) / args.variant}; train with --data-dir {args.out}")


def stop(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="memnet", description="Memory networks and attention for question answering.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_demo_parser(commands)
    add_train_parser(commands)
    add_data_parser(commands)
    add_bench_parser(commands)
    add_inspect_parser(commands)
    add_report_parser(commands)
    add_serve_parser(commands)
    args = parser.parse_args(argv)
    from memnet.records import code_identity

    code_identity()  # the code this process imported, taken before a long command gives anyone time to edit it
    if threading.current_thread() is threading.main_thread():  # a polite kill stops like Ctrl-C: finished runs kept,
        signal.signal(signal.SIGTERM, stop)  # the one in flight resumable
    try:
        args.run(args)
    except (ValueError, OSError, RuntimeError) as error:  # bad input, a damaged record, a full disk: one line, no traceback
        print(f"memnet {args.command}: error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        again = "the same command" if args.command == "bench" else "the same command and --resume"
        print(f"\ninterrupted; {args.command} continues with {again}", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
