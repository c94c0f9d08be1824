"""Does our generator speak bAbI? Train MemN2N on generated questions only, test on the real test set.

    python scripts/faithfulness.py --data-dir DIR --bench results/babi-1k-memn2n --repeats 3

For every task on which MemN2N trained on the real 1k data reaches <= 5% test error (read from the
benchmark's run records), train the same model (PE LS RN) on 1k generated questions, choose the best of
`--repeats` seeds by the *generated* validation split, and measure it on the *real* test set.
Writes one run record per seed and faithfulness.json (the arguments and every command that ran);
resumable. The tables, summary.md and results.json, are made from those records by memnet.report
(`memnet report results` remakes them), so --bench must sit beside --out.
"""

import argparse
from pathlib import Path

import torch

from memnet.records import environment, read_json, write_json
from memnet.report import write_tables
from memnet.run_record import CONFIG, is_finished, pack
from memnet.tables.common import FAILED_ABOVE
from memnet.tables.faithfulness import FAITHFULNESS_RECORD, real_data_errors
from memnet.spec import resolve
from memnet.train import load_data, train_run
from tasks.generator import GeneratorConfig, generate_babi

PRESET = "pe-ls-rn"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="the real bAbI data dir (holding en/)")
    parser.add_argument("--bench", default="results/babi-1k-memn2n", help="benchmark of MemN2N on the real data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--out", default="results/faithfulness")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    if Path(args.bench).resolve().parent != out.resolve().parent:
        parser.error("--bench must sit beside --out: the table is remade from both folders' records")
    real_error = real_data_errors(Path(args.bench))
    tasks = sorted(task for task, cell in real_error.items() if cell["best"] <= FAILED_ABOVE)
    record = read_json(out / FAITHFULNESS_RECORD) if (out / FAITHFULNESS_RECORD).exists() else {"invocations": []}
    record["invocations"].append(environment(torch.device("cpu")))
    record.update({"bench": args.bench, "generator_seed": args.seed, "repeats": args.repeats})
    write_json(out / FAITHFULNESS_RECORD, record)
    generated = out / "generated-data"  # regenerated from the seed on every run; not committed
    generate_babi(generated, tasks, GeneratorConfig(questions=1000, seed=args.seed))
    for task in tasks:
        # train and valid generated, test real (read in the training vocabulary: unseen real words -> <unk>)
        spec = resolve("memn2n", PRESET, task_options={"name": f"babi:{task}", "data_dir": str(generated), "variant": "en",
                                                        "test_data_dir": args.data_dir})
        data = load_data(spec.task)
        for seed in range(args.repeats):
            run_dir = out / "runs" / f"task-{task}" / f"seed-{seed}"
            if is_finished(run_dir):  # in its folder, or packed (a fresh clone has no run folders)
                continue
            summary = train_run(spec.with_seed(seed), run_dir, resume=(run_dir / CONFIG).exists(), device="cpu",
                                data=data, preset=PRESET)
            print(f"task {task} seed {seed}: real test error {summary['test_error']['all']}%")
            pack(out, [run_dir])
    write_tables(out)
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
