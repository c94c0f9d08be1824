"""How fast the fast path is: eager single runs against compiled populations, side by side, in one process.

    python scripts/bench_speed.py --data-dir DIR                     # writes results/speed/speed.json (summary.md: memnet report)
    python scripts/bench_speed.py --data-dir DIR --quick --out /tmp/s # a small subset, under 2 minutes; last line "speedup X"

Parts:
  machine    CPU, cores, GPU; measured matmul GFLOP/s and copy GB/s on one thread
  same_work  MemN2N PE LS RN on tasks 1, 2, 3 and 16 x 4 seeds, full epochs, trained four ways one after
             another on one thread: eager single runs (memnet train's path), compiled single runs,
             an eager population, a compiled population (memnet bench's default). Wall seconds and mean
             test error of each; compile time separately (the first step of each compiled graph)
  protocols  the 1k per-task protocol, joint training and the 10k protocol on the fast path: each read from a
             benchmark folder that `memnet bench` trained (--protocol-1k NAME, --joint NAME, --protocol-10k NAME),
             with its FLOPs and bytes per step counted on one eager step per population, so the record says
             how far it runs from this machine's limits

Every number comes from this run (or, for the protocol, from that benchmark's own record).
"""

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from memnet import bench
from memnet.batches import noise_draws
from memnet.population import Member, Population, train_population
from memnet.records import environment, read_json, write_json
from memnet.report import write_tables
from memnet.spec import resolve
from memnet.train import load_data, train_run

PLANS = {  # tasks, seeds, training options over the pe-ls-rn preset, and the paths compared
    "full": {"tasks": [1, 2, 3, 16], "seeds": 4, "train": {},
             "modes": ["eager_single", "compiled_single", "eager_population", "compiled_population"]},
    # compiled single runs are left out: each compiles its own graphs, minutes on this CPU
    "quick": {"tasks": [1, 2, 3, 16], "seeds": 2, "train": {"epochs": 8, "linear_start": 2},
              "modes": ["eager_single", "eager_population", "compiled_population"]},
}


def machine() -> dict:
    """What this machine does at best on one thread: a large matmul, and a large copy."""
    torch.set_num_threads(1)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    started, reps = time.perf_counter(), 10
    for _ in range(reps):
        a @ b
    gflops = 2 * 1024**3 * reps / (time.perf_counter() - started) / 1e9
    source = torch.randn(64 * 2**20 // 4)  # 64 MiB
    target = torch.empty_like(source)
    target.copy_(source)
    started = time.perf_counter()
    for _ in range(reps):
        target.copy_(source)
    gbs = 2 * source.nbytes * reps / (time.perf_counter() - started) / 1e9  # read and write
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "matmul_gflops_one_thread": round(gflops, 1), "copy_gbytes_per_s_one_thread": round(gbs, 1)}


def specs_for(plan: dict, data_dir: str):
    return [resolve("memn2n", "pe-ls-rn", train_options={**plan["train"], "seed": seed},
                    task_options={"name": f"babi:{task}", "data_dir": data_dir})
            for task in plan["tasks"] for seed in range(plan["seeds"])]


def mean_test(summaries: list[dict]) -> float:
    return round(statistics.fmean(summary["test_error"]["all"] for summary in summaries), 2)


def same_work(plan: dict, data_dir: str, scratch: Path) -> dict:
    """The same runs four ways, one after another, one thread."""
    specs = specs_for(plan, data_dir)
    data = {spec.task: load_data(spec.task) for spec in specs}
    modes = {}

    def timed(name, train):
        started = time.perf_counter()
        summaries = train(scratch / name)
        modes[name] = {"seconds": round(time.perf_counter() - started, 1), "mean_test_error": mean_test(summaries)}
        print(f"{name}: {modes[name]}", flush=True)

    def members(folder):
        return [Member(spec, folder / f"run-{k}", data[spec.task]) for k, spec in enumerate(specs)]

    def populations(folder, compile):
        units = bench.units_of([bench.Job(spec, "", str(folder / f"run-{k}")) for k, spec in enumerate(specs)], "population")
        return [summary for unit in units for summary in
                bench.run_unit(unit, "cpu", False, "population", compile, data=[data[job.spec.task] for job in unit])]

    paths = {
        "eager_single": lambda folder: [train_run(spec, folder / f"run-{k}", progress=False, device="cpu", data=data[spec.task])
                                        for k, spec in enumerate(specs)],
        "compiled_single": lambda folder: [train_population([member], device="cpu", progress=False)[0] for member in members(folder)],
        "eager_population": lambda folder: populations(folder, compile=False),
        "compiled_population": lambda folder: populations(folder, compile=True),
    }
    compile_seconds = compile_populations(specs, data)  # cold, timed apart; the compiled rows then find torch's compile cache warm
    for mode in plan["modes"]:
        timed(mode, paths[mode])
    eager, fast = modes["eager_single"], modes["compiled_population"]
    return {"work": f"MemN2N pe-ls-rn, bAbI 1k tasks {plan['tasks']} x {plan['seeds']} seeds, options {plan['train'] or 'of the preset'}",
            "eager_seconds": eager["seconds"], "fast_seconds": fast["seconds"], "compile_seconds": compile_seconds,
            "speedup": round(eager["seconds"] / fast["seconds"], 2),
            "eager_mean_test_error": eager["mean_test_error"], "fast_mean_test_error": fast["mean_test_error"], "modes": modes}


def compile_populations(specs, data) -> float:
    """Seconds to compile the populations' training steps from cold: the first step of each, less a later step."""
    total = 0.0
    units = bench.units_of([bench.Job(spec, "", "") for spec in specs], "population")
    for unit in units:
        population = Population([Member(job.spec, Path("."), data[job.spec.task]) for job in unit], torch.device("cpu"), compile=True)
        args = step_arguments(population)
        started = time.perf_counter()
        population.step(*args)
        first = time.perf_counter() - started
        started = time.perf_counter()
        population.step(*args)
        total += first - (time.perf_counter() - started)
    return round(total, 1)


def step_arguments(population: Population) -> tuple:
    """A training step's arguments for every member: row 0 of each, noise drawn, softmax on, lr 0.01, clipping at 40."""
    p, b, rule = len(population.members), population.config.batch_size, population.config.noise_rule
    draws = max(noise_draws(member.data.sizes.memory_size, rule) for member in population.members)
    return (population.params, population.moments, population.buffers, population.splits["train"],
            torch.zeros(p, b, dtype=torch.long), torch.rand(p, b), torch.rand(p, b, draws), torch.ones(p, dtype=torch.bool),
            population.answers, torch.full((p,), 0.01), torch.full((p,), 40.0), torch.ones(p, dtype=torch.bool))


class ByteCounter(torch.utils._python_dispatch.TorchDispatchMode):
    """Bytes every op reads and writes (inputs and outputs), summed: an unfused upper bound of memory traffic."""

    def __init__(self):
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tensors = [x for x in torch.utils._pytree.tree_leaves((args, kwargs, out)) if isinstance(x, torch.Tensor)]
        self.bytes += sum(t.numel() * t.element_size() for t in tensors)
        return out


def protocol(name: str, results: Path, data_dir: str) -> dict:
    """The protocol's wall time and table from its benchmark record; its FLOPs and bytes per step counted
    on one eager step of each of its populations, times the steps it took."""
    root = results / name
    record = read_json(root / "bench.json")
    trained = [inv for inv in record["invocations"] if inv.get("runs_trained")]
    rows = read_json(root / "results.json")["rows"]
    best = [row["best"] for row in rows if "+" not in row["group"]]
    jobs, _ = bench.make_grid(root, record["grid"], record["options"], data_dir)
    flops = traffic = 0
    for unit in bench.units_of(jobs, "population"):
        members = [Member(job.spec, Path(job.run_dir), bench.cached_data(job.spec.task)) for job in unit]
        population = Population(members, torch.device("cpu"), compile=False)
        b, args = population.config.batch_size, step_arguments(population)
        counter, counted = FlopCounterMode(display=False), ByteCounter()
        with counter:
            population.step(*args)
        with counted:
            population.step(*args)
        spec = members[0].spec.train
        per_epoch = (lambda n: n // b) if spec.batch_sampling == "replacement" else (lambda n: -(-n // b))
        steps = (spec.linear_start + spec.epochs) * max(per_epoch(len(m.data.splits["train"])) for m in members)
        flops += counter.get_total_flops() * steps
        traffic += counted.bytes * steps
    seconds = sum(inv["wall_seconds"] for inv in trained)
    return {"benchmark": str(root), "runs": sum(inv["runs_trained"] for inv in trained), "seconds": seconds,
            "mean_best_test_error": round(statistics.fmean(best), 2), "train_step_flops": flops, "train_step_bytes": traffic,
            "achieved_gflops": round(flops / seconds / 1e9, 2), "achieved_gbytes_per_s": round(traffic / seconds / 1e9, 2),
            "device": trained[-1]["device"], "code_version": trained[-1]["code_version"]}


PROTOCOLS = {  # record key -> what it holds (the flag that names its benchmark folder is --KEY)
    "protocol_1k": "the 1k per-task protocol, 20 tasks x 10 seeds",
    "joint": "joint training on the 20 tasks of 1k, 10 seeds",
    "protocol_10k": "the 10k per-task protocol, 20 tasks x 4 seeds",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="the bAbI data dir (holding en/ and en-10k/)")
    parser.add_argument("--out", default="results/speed")
    parser.add_argument("--quick", action="store_true", help="a small subset of the same comparison (under 2 minutes)")
    parser.add_argument("--keep-same-work", action="store_true",
                        help="keep the same-work comparison of the record in --out (with its own environment) instead of running it")
    for key, what in PROTOCOLS.items():
        parser.add_argument(f"--{key.replace('_', '-')}", dest=key, help=f"a benchmark folder under --results that ran {what} on the fast path")
    parser.add_argument("--results", default="results")
    args = parser.parse_args()
    out = Path(args.out)
    # torch's compile cache starts empty, so that "from cold" is: an earlier run's kernels on disk would make it warm
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-speed-inductor-")
    kept = read_json(out / "speed.json") if args.keep_same_work else {}
    if args.keep_same_work and "same_work" not in kept:
        parser.error(f"--keep-same-work: {out / 'speed.json'} holds no same-work comparison")
    record = {"machine": machine(), "environment": environment(torch.device("cpu"))}
    torch.set_num_threads(1)
    if kept:
        record["same_work"] = {**kept["same_work"], "environment": kept["same_work"].get("environment", kept["environment"])}
    else:
        with tempfile.TemporaryDirectory() as scratch:
            record["same_work"] = same_work(PLANS["quick" if args.quick else "full"], args.data_dir, Path(scratch))
        record["same_work"]["environment"] = record["environment"]
    for key in PROTOCOLS:
        if getattr(args, key):
            record[key] = protocol(getattr(args, key), Path(args.results), args.data_dir)
    write_json(out / "speed.json", record)
    write_tables(out)
    print(f"records in {out}")
    print(f"speedup {record['same_work']['speedup']}")


if __name__ == "__main__":
    main()
