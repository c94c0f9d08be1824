"""Which of the official release's differences from the paper's text matter? Each turned back alone.

    python scripts/release_ablation.py --data-dir DIR                  # every arm, 20 tasks x 10 seeds each
    python scripts/release_ablation.py --data-dir DIR --arms lr-0.01,frobenius

Every arm is `memnet bench` with the release preset and one switch turned back to this library's
default (`ARMS`), in its own benchmark folder OUT/ARM (resumable, as any benchmark). OUT/ablation.json
names the arms and the benchmark of the release preset itself they are read against (--baseline, beside
OUT); `memnet report` makes OUT/summary.md from the arms' run records.
"""

import argparse
import shlex
from pathlib import Path

import torch

from memnet import cli
from memnet.records import environment, read_json, write_json
from memnet.report import write_tables
from memnet.tables.ablation import ABLATION_RECORD

# arm -> the flags that turn one switch of `--preset release` back to the default (docs/release.md, "The release, whole")
ARMS = {
    "lr-0.01": "--lr 0.01",
    "halve-after-25": "--no-lr-halve-at-multiples",
    "permutation": "--batch-sampling permutation",
    "frobenius": "--clip-measure frobenius",
    "noise-gaps": "--noise-rule gaps",
    "own-time-tables": "-o time_words=false",
    "unscaled-time": "-o time_scale=false",
    "time-rows-memory-size": "-o time_rows=memory-size",
    "answers-vocabulary": "-o answers=vocabulary",
    "whole-stories": "-o recent_only=false",
    "paper-position": "--encoding position -o time_scale=false",  # time_scale reads the release's weights
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="the real bAbI data dir (holding en/)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of: {', '.join(ARMS)}")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default="results/babi-1k-release-ablation")
    parser.add_argument("--baseline", default="babi-1k-release", help="the release preset's benchmark, beside --out")
    args = parser.parse_args()
    arms = args.arms.split(",")
    unknown = [arm for arm in arms if arm not in ARMS]
    if unknown:
        parser.error(f"--arms: unknown {', '.join(unknown)}; choose from {', '.join(ARMS)}")
    out = Path(args.out)
    record = read_json(out / ABLATION_RECORD) if (out / ABLATION_RECORD).exists() else {"invocations": []}
    record["invocations"].append(environment(torch.device("cpu")))
    record.update(baseline=args.baseline, arms={**record.get("arms", {}), **{arm: ARMS[arm] for arm in arms}})
    write_json(out / ABLATION_RECORD, record)
    for arm in arms:
        print(f"== {arm}: {ARMS[arm]}", flush=True)
        cli.main(["bench", "--name", arm, "--results", str(out), "--models", "memn2n:release", "--tasks", "all",
                  "--repeats", str(args.repeats), "--data-dir", args.data_dir, *shlex.split(ARMS[arm])])
    write_tables(out)
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
