"""The `memnet` command: train models, get and look at data, run the demo and benchmarks, inspect runs."""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from memnet.models import MODELS
from memnet.presets import PRESETS
from memnet.train import TrainConfig
from tasks.babi_tensors import DEFAULT_MEMORY_SIZE

# memn2n flags that become model options when given (dest -> config field)
MODEL_FLAGS = {"hops": "hops", "dim": "dim", "encoding": "encoding", "tying": "tying", "relu": "relu", "temporal": "temporal"}


def parse_option(text: str) -> tuple[str, object]:
    """KEY=VALUE with VALUE read as JSON when it parses (numbers, true/false), else as a string."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.replace("-", "_"), json.loads(value)
    except json.JSONDecodeError:
        return key.replace("-", "_"), value


DATA_DIR_HELP = "folder holding en/, en-10k/, ... (default: $MEMNET_DATA, else the download cache)"


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help=DATA_DIR_HELP)
    parser.add_argument("--variant", default="en", help="folder of the archive: en, en-10k, en-valid, hn, ... (default: en)")


def add_train_parser(commands) -> None:
    parser = commands.add_parser("train", help="train a model on a task and write a run directory",
                                 description="Train a model; writes config.json, metrics.jsonl, checkpoint.pt and summary.json to --out.")
    parser.add_argument("--model", default="memn2n", choices=sorted(MODELS), help="which model (default: memn2n)")
    parser.add_argument("--task", required=True, help="babi:2, babi:1-3,6, babi:all (joint); temporal:easy..nightmare; copy, reverse, sort (seq2seq)")
    parser.add_argument("--out", required=True, help="run directory to write")
    add_data_flags(parser)
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a column of the paper's table: " + ", ".join(sorted(PRESETS)))
    parser.add_argument("--memory-size", type=int, default=DEFAULT_MEMORY_SIZE, help="most recent sentences kept in memory (default: 50)")
    model = parser.add_argument_group("memn2n options")
    model.add_argument("--hops", type=int, help="memory hops (default 3)")
    model.add_argument("--dim", type=int, help="embedding size (default 20; 50 for joint presets)")
    model.add_argument("--encoding", choices=["bow", "position", "position-release"],
                       help="sentence encoding: the paper's position encoding (default), bag of words, or the official release's weights")
    model.add_argument("--tying", choices=["adjacent", "layerwise"], help="weight tying (default adjacent)")
    model.add_argument("--relu", action="store_true", default=None, help="ReLU between hops (layerwise only)")
    model.add_argument("--no-temporal", dest="temporal", action="store_false", default=None, help="no temporal encoding")
    model.add_argument("--option", "-o", action="append", type=parse_option, default=[], metavar="KEY=VALUE",
                       help="any other field of the model's config, e.g. -o hidden=64")
    train = parser.add_argument_group("training")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.type in ("bool", bool):
            train.add_argument(flag, action="store_true", default=None, help=f"(default {field.default})")
        else:
            kind = {"int": int, "float": float, "str": str}.get(str(field.type), type(field.default))
            train.add_argument(flag, type=kind, help=f"(default {field.default})")
    parser.add_argument("--repeats", type=int, default=1, help="train N seeds, keep the lowest validation error")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_train)


def run_train(args) -> None:
    from memnet.train import train_repeats
    from tasks.registry import load

    preset = PRESETS[args.preset] if args.preset else {"model": {}, "train": {}}
    model_options = dict(preset["model"])
    model_options.update({field: getattr(args, dest) for dest, field in MODEL_FLAGS.items() if getattr(args, dest) is not None})
    model_options.update(dict(args.option))
    train_options = dict(preset["train"])
    train_options.update({f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if getattr(args, f.name) is not None})
    config = TrainConfig(**train_options)
    task_options = {"data_dir": args.data_dir, "variant": args.variant, "memory_size": args.memory_size}
    data = load(args.task, **task_options)
    summary = train_repeats(args.model, model_options, config, data, task_options, args.out, args.repeats, args.resume, not args.quiet)
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
    babi.set_defaults(run=run_data_babi)
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
                                 description="Train models x tasks x data sizes x modes x seeds; resumable; writes results/NAME/.")
    parser.add_argument("--name", required=True, help="folder under --results for this benchmark")
    parser.add_argument("--models", default="memn2n:pe-ls-rn", help="comma list of MODEL[:PRESET], e.g. memn2n:pe-ls-rn,lstm")
    parser.add_argument("--tasks", default="all", help="all, 2, 1-3,6 (default all)")
    parser.add_argument("--variants", default="en", help="comma list of data folders: en, en-10k (default en)")
    parser.add_argument("--modes", default="per-task", help="comma list: per-task, joint (default per-task)")
    parser.add_argument("--repeats", type=int, default=1, help="seeds per task; the table keeps the best by valid error")
    parser.add_argument("--data-dir", help=DATA_DIR_HELP)
    parser.add_argument("--results", default="results", help="where benchmark folders go (default results/)")
    parser.add_argument("--workers", type=int, help="parallel runs on CPU (default: one per core)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--set", action="append", type=parse_option, default=[], metavar="KEY=VALUE", dest="overrides",
                        help="training option for every run, e.g. --set epochs=5")
    parser.add_argument("--wandb", action="store_true", help="log every run, and the final table, to one wandb group")
    parser.set_defaults(run=run_bench)


def run_bench(args) -> None:
    from memnet.bench import overrides_from, run_bench as bench

    bench(args.name, args.models.split(","), args.tasks, args.variants.split(","), args.modes.split(","), args.repeats,
          args.data_dir, args.results, args.workers, overrides_from(args.overrides), args.device, args.wandb)


def add_inspect_parser(commands) -> None:
    parser = commands.add_parser("inspect", help="show a trained run's attention over story sentences",
                                 description="Print per-hop attention over a story; write it as HTML or PNG; or measure "
                                             "how often each hop attends to a supporting fact (--report).")
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
    from memnet.records import write_atomic

    run = load_run(args.run_dir, args.data_dir)
    if "source" in run.data.splits[args.split]:  # a seq2seq run: alignments instead of attention over sentences
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="memnet", description="Memory networks and attention for question answering.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_demo_parser(commands)
    add_train_parser(commands)
    add_data_parser(commands)
    add_bench_parser(commands)
    add_inspect_parser(commands)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as error:
        print(f"memnet {args.command}: error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("\ninterrupted; a run continues with the same command and --resume", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
