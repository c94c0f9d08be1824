"""Pack every benchmark folder's run folders into its runs.jsonl.gz (memnet.run_record), once.

    python scripts/pack_results.py results            # pack; the run folders stay where they are
    python scripts/pack_results.py results --check    # write nothing; exit 1 naming each folder with runs not yet packed

Made for the records written before benchmarks packed their runs as they finished. A `memnet bench`
run's identity (model, preset, setting, variant, mode, tasks, seed) is read here once, from its
folder's name and its config, and recorded in the pack, so that no reader parses a folder name again.
Runs that a pack already holds are left as they are: packing twice adds nothing.
"""

import argparse
import sys
from pathlib import Path

from memnet.records import read_json
from memnet.run_record import CONFIG, benchmark_folders, finished_folders, pack, read_pack
from memnet.tables.babi import identity_from_path


def bench_identity(root: Path, run_dir: Path) -> dict:
    """The identity of one run of a `memnet bench` folder, from its path and its config.json."""
    identity = identity_from_path(run_dir.relative_to(root).as_posix())
    config = read_json(run_dir / CONFIG)
    spec = config.get("spec") or {"model": {"name": config["model"]}, "task": {"name": config["task"]}}  # older records: no spec
    if identity["mode"] == "joint":
        identity["tasks"] = [int(task) for task in spec["task"]["name"].removeprefix("babi:").split(",")]
    model = spec["model"]["name"]
    preset = identity["setting"].removeprefix(model).removeprefix("-")  # the grid's MODEL:PRESET, as `memnet bench` names it
    return {"model": model, "preset": preset, **identity}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a folder has runs its pack lacks")
    args = parser.parse_args()
    unpacked = 0
    for root in benchmark_folders(args.results_dir):
        packed = read_pack(root)
        todo = [run_dir for run_dir in finished_folders(root) if run_dir.relative_to(root).as_posix() not in packed]
        if not todo:
            continue
        unpacked += len(todo)
        if args.check:
            print(f"{root}: {len(todo)} finished run(s) not in its pack")
            continue
        is_bench = (root / "bench.json").exists()
        identities = {run_dir.relative_to(root).as_posix(): bench_identity(root, run_dir) for run_dir in todo} if is_bench else {}
        added = pack(root, todo, identities)
        print(f"{root}: packed {len(added)} run(s), {len(read_pack(root))} in all")
    if args.check and unpacked:
        sys.exit(1)


if __name__ == "__main__":
    main()
