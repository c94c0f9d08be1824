"""How fast the fast path is: eager single runs against compiled populations, side by side, in one process.

    python scripts/bench_speed.py --data-dir DIR                     # writes results/speed/speed.json (summary.md: memnet report)
    python scripts/bench_speed.py --data-dir DIR --quick --out /tmp/s # a small subset, under 2 minutes; last line "speedup X"
    python scripts/bench_speed.py --data-dir DIR --device cuda --precision bfloat16 --out results/speed-gpu  # on a GPU, with a bf16 row

Parts:
  machine    CPU, cores, GPU; measured matmul GFLOP/s and copy GB/s on one thread (and on the GPU, with --device cuda)
  same_work  MemN2N PE LS RN on tasks 1, 2, 3 and 16 x 4 seeds, full epochs, trained four ways one after
             another on one thread: eager single runs (memnet train's path), compiled single runs,
             an eager population, a compiled population (memnet bench's default). Wall seconds and mean
             test error of each; compile time separately (the first step of each compiled graph). On --device
             (cpu, or cuda: every path on the GPU); --precision bfloat16 adds a row, the compiled population
             under bfloat16 autocast, to check that its error is the float32 row's
  protocols  the 1k per-task protocol, joint training and the 10k protocol on the fast path: each read from a
             benchmark folder that `memnet bench` trained (--protocol-1k NAME, --joint NAME, --protocol-10k NAME;
             --protocol-1k-warm NAME: the 1k grid rerun with torch's compile cache warm),
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

from memnet import bench, units
from memnet.batches import noise_draws
from memnet.population import Member, Population, train_population
from memnet.records import environment, read_json, write_json
from memnet.report import write_tables
from memnet.run_record import summary_of
from memnet.spec import resolve
from memnet.train import load_data, train_run

PLANS = {  # tasks, seeds, training options over the pe-ls-rn preset, and the paths compared
    "full": {"tasks": [1, 2, 3, 16], "seeds": 4, "train": {},
             "modes": ["eager_single", "compiled_single", "eager_population", "compiled_population"]},
    # compiled single runs are left out: each compiles its own graphs, minutes on this CPU
    "quick": {"tasks": [1, 2, 3, 16], "seeds": 2, "train": {"epochs": 8, "linear_start": 2},
              "modes": ["eager_single", "eager_population", "compiled_population"]},
}


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a timer reads work done, not work launched (a CPU runs in order)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def limits(device: torch.device, size: int, dtype=torch.float32) -> tuple[float, float]:
    """What `device` does at best: a size² matmul (GFLOP/s) and a large copy (GB/s, read and write)."""
    wait = lambda: synchronize(device)
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    wait()
    started, reps = time.perf_counter(), 10
    for _ in range(reps):
        a @ b
    wait()
    gflops = 2 * size**3 * reps / (time.perf_counter() - started) / 1e9
    source = torch.randn((64 if device.type == "cpu" else 1024) * 2**20 // 4, device=device)  # 64 MiB; 1 GiB on a GPU
    target = torch.empty_like(source)
    target.copy_(source)
    wait()
    started = time.perf_counter()
    for _ in range(reps):
        target.copy_(source)
    wait()
    return round(gflops, 1), round(2 * source.nbytes * reps / (time.perf_counter() - started) / 1e9, 1)


def machine(device: torch.device) -> dict:
    """The CPU on one thread, and the GPU when the comparison runs on one."""
    torch.set_num_threads(1)
    gflops, gbs = limits(torch.device("cpu"), 1024)
    found = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
             "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
             "matmul_gflops_one_thread": gflops, "copy_gbytes_per_s_one_thread": gbs}
    if device.type == "cuda":
        found["gpu_matmul_gflops"], found["gpu_copy_gbytes_per_s"] = limits(device, 8192)
        found["gpu_matmul_gflops_bfloat16"] = limits(device, 8192, torch.bfloat16)[0]
    return found


def specs_for(plan: dict, data_dir: str, precision: str = "float32"):
    return [resolve("memn2n", "pe-ls-rn", train_options={**plan["train"], "seed": seed, "precision": precision},
                    task_options={"name": f"babi:{task}", "data_dir": data_dir})
            for task in plan["tasks"] for seed in range(plan["seeds"])]


def mean_test(summaries: list[dict]) -> float:
    return round(statistics.fmean(summary["test_error"]["all"] for summary in summaries), 2)


def same_work(plan: dict, data_dir: str, scratch: Path, device: str = "cpu", precision: str = "float32") -> dict:
    """The same runs four ways (five with a bfloat16 row), one after another, one thread, on `device`."""
    specs = specs_for(plan, data_dir)
    data = {spec.task: load_data(spec.task) for spec in specs}
    wait = lambda: synchronize(torch.device(device))
    modes = {}

    def timed(name, train):
        wait()
        started = time.perf_counter()
        summaries = train(scratch / name)
        wait()
        modes[name] = {"seconds": round(time.perf_counter() - started, 1), "mean_test_error": mean_test(summaries)}
        print(f"{name}: {modes[name]}", flush=True)

    def members(folder):
        return [Member(spec, folder / f"run-{k}", data[spec.task]) for k, spec in enumerate(specs)]

    def populations(folder, compile, these=specs):
        grouped = units.units_of([units.Job(spec, "", str(folder / f"run-{k}")) for k, spec in enumerate(these)], "population")
        return [summary for unit in grouped for summary in  # compiled as memnet bench compiles: where it pays
                units.run_unit(unit, device, False, "population", compile and (device == "cuda" or units.worth_compiling(unit)),
                               data=[data[job.spec.task] for job in unit])]

    paths = {
        "eager_single": lambda folder: [train_run(spec, folder / f"run-{k}", progress=False, device=device, data=data[spec.task])
                                        for k, spec in enumerate(specs)],
        "compiled_single": lambda folder: [train_population([member], device=device, progress=False)[0] for member in members(folder)],
        "eager_population": lambda folder: populations(folder, compile=False),
        "compiled_population": lambda folder: populations(folder, compile=True),
        "compiled_population_bfloat16": lambda folder: populations(folder, compile=True, these=specs_for(plan, data_dir, "bfloat16")),
    }
    # cold, timed apart; the compiled rows then find torch's compile cache warm
    compile_seconds = compile_populations(specs, data, torch.device(device))
    for mode in plan["modes"] + (["compiled_population_bfloat16"] if precision == "bfloat16" else []):
        timed(mode, paths[mode])
    eager, fast = modes["eager_single"], modes["compiled_population"]
    return {"work": f"MemN2N pe-ls-rn, bAbI 1k tasks {plan['tasks']} x {plan['seeds']} seeds, options {plan['train'] or 'of the preset'}",
            "device": device,
            "eager_seconds": eager["seconds"], "fast_seconds": fast["seconds"], "compile_seconds": compile_seconds,
            "speedup": round(eager["seconds"] / fast["seconds"], 2),
            "eager_mean_test_error": eager["mean_test_error"], "fast_mean_test_error": fast["mean_test_error"], "modes": modes}


def compile_populations(specs, data, device: torch.device) -> float:
    """Seconds to compile the populations' training steps from cold: the first step of each, less a later step."""
    total, wait = 0.0, lambda: synchronize(device)
    for unit in units.units_of([units.Job(spec, "", "") for spec in specs], "population"):
        if device.type == "cpu" and not units.worth_compiling(unit):
            continue  # trained eagerly (memnet.units.worth_compiling): nothing to compile
        population = Population([Member(job.spec, Path("."), data[job.spec.task]) for job in unit], device, compile=True)
        args = step_arguments(population)
        started = time.perf_counter()
        population.step(*args)
        wait()
        first = time.perf_counter() - started
        started = time.perf_counter()
        population.step(*args)
        wait()
        total += first - (time.perf_counter() - started)
    return round(total, 1)


def step_arguments(population: Population) -> tuple:
    """A training step's arguments for every member: row 0 of each, noise drawn, softmax on, lr 0.01, clipping at 40,
    no weight decay."""
    p, b, rule, on = len(population.members), population.config.batch_size, population.config.noise_rule, population.device
    draws = max(noise_draws(member.data.sizes.memory_size, rule) for member in population.members)
    return (population.params, population.moments, population.buffers, population.splits["train"],
            torch.zeros(p, b, dtype=torch.long, device=on), torch.rand(p, b, device=on), torch.rand(p, b, draws, device=on),
            torch.ones(p, dtype=torch.bool, device=on), population.answers, torch.full((p,), 0.01, device=on),
            torch.full((p,), 40.0, device=on), torch.zeros(p, device=on), torch.ones(p, dtype=torch.bool, device=on))


def interleaved_ms(ways: dict, rounds: int, steps: int) -> dict[str, list[float]]:
    """Milliseconds a step of each way (`ways[name]()` runs one round of `steps` steps), in `rounds` interleaved
    rounds, so that machine noise falls on every way alike."""
    times = {name: [] for name in ways}
    for _ in range(rounds):
        for name, run in ways.items():
            started = time.perf_counter()
            run()
            times[name].append(1000 * (time.perf_counter() - started) / steps)
    return times


def timing_record(unit: list, times: dict[str, list[float]], before: str, after: str) -> dict:
    """A population's entry in a step-timing record: its tasks, members, each round's ms per way, the medians, and
    the speedup of `after` over `before`."""
    median = {name: round(statistics.median(values), 2) for name, values in times.items()}
    return {"tasks": sorted({job.spec.task.name for job in unit}, key=lambda name: (len(name), name)), "members": len(unit),
            "ms_a_step": {name: [round(ms, 2) for ms in values] for name, values in times.items()},
            "median_ms": median, "speedup": round(median[before] / median[after], 2)}


def compare_release_populations(description: str, default_out: str, compare, rounds: int, steps: int) -> None:
    """The command of the step-timing scripts (bench_step_changes, bench_sentence_table): `compare(unit, data)` for each
    population the release 1k grid trains on 2 workers, on one thread; the record written to --out, a line a population."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="the bAbI data dir (holding en/)")
    parser.add_argument("--out", default=default_out)
    args = parser.parse_args()
    torch.set_num_threads(1)
    jobs, _ = bench.make_grid(Path("/nonexistent"), {"models": ["memn2n:release"], "tasks": "all", "variants": ["en"],
                                                     "modes": ["per-task"], "repeats": 10}, {"model": {}, "train": {}, "task": {}},
                              args.data_dir)
    data = {job.spec.task: units.cached_data(job.spec.task) for job in jobs}
    record = {"environment": environment(torch.device("cpu")), "rounds": rounds, "steps_a_round": steps,
              "populations": [compare(unit, data) for unit in units.units_of(jobs, "population", workers=2)]}
    write_json(Path(args.out), record)
    for unit in record["populations"]:
        print(f"tasks {','.join(name.split(':')[-1] for name in unit['tasks'])} ({unit['members']} members): "
              f"{unit['median_ms']} ms a step; speedup {unit['speedup']}x")


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
    jobs, _ = bench.make_grid(root, record["grid"], record["options"], data_dir, record.get("default_presets", {}))
    flops = traffic = 0
    populations = []
    for unit in units.units_of(jobs, "population"):
        members = [Member(job.spec, Path(job.run_dir), units.cached_data(job.spec.task)) for job in unit]
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
        populations.append(population_time(unit, population, steps))
    seconds = sum(inv["wall_seconds"] for inv in trained)
    return {"benchmark": str(root), "runs": sum(inv["runs_trained"] for inv in trained), "seconds": seconds,
            "workers": trained[-1].get("workers"), "populations": populations,
            "mean_best_test_error": round(statistics.fmean(best), 2), "train_step_flops": flops, "train_step_bytes": traffic,
            "achieved_gflops": round(flops / seconds / 1e9, 2), "achieved_gbytes_per_s": round(traffic / seconds / 1e9, 2),
            "device": trained[-1]["device"], "code_version": trained[-1]["code_version"]}


def population_time(unit: list, population: Population, steps: int) -> dict:
    """Where a population's time went, from its members' run records: each member's `seconds` is its share
    of the epochs it trained in (compile and evaluation included), so the members' sum is the time its
    worker spent on the population, however the benchmark cut it into parts."""
    summaries = [summary_of(Path(job.run_dir)) for job in unit]  # from the run folders, or the benchmark's pack
    # each part's first step (compiling, mostly), shared out over its members; records made before it was kept have none
    parts = [summary["population"] for summary in summaries if "population" in summary]
    first_steps = round(sum(part["first_step_seconds"] / part["members"] for part in parts), 1) if parts else None
    story = population.splits["train"].story.shape  # (p, n + 1, m, w)
    return {"tasks": sorted({job.spec.task.name for job in unit}, key=lambda name: (len(name), name)), "members": len(unit),
            "story_slots": story[2], "story_words": story[3], "steps": steps,
            "seconds": round(sum(summary["seconds"] for summary in summaries), 1), "first_step_seconds": first_steps}


PROTOCOLS = {  # record key -> what it holds (the flag that names its benchmark folder is --KEY)
    "protocol_1k": "the 1k per-task protocol, 20 tasks x 10 seeds",
    "protocol_1k_warm": "the same grid rerun with torch's compile cache warm (as any rerun of the same code is)",
    "joint": "joint training on the 20 tasks of 1k, 10 seeds",
    "protocol_10k": "the 10k per-task protocol, 20 tasks x 4 seeds",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="the bAbI data dir (holding en/ and en-10k/)")
    parser.add_argument("--out", default="results/speed")
    parser.add_argument("--quick", action="store_true", help="a small subset of the same comparison (under 2 minutes)")
    parser.add_argument("--keep-same-work", action="store_true",
                        help="keep the same-work comparison of the record in --out (with its own environment and machine "
                             "measurements) instead of running it")
    for key, what in PROTOCOLS.items():
        parser.add_argument(f"--{key.replace('_', '-')}", dest=key, help=f"a benchmark folder under --results that ran {what} on the fast path")
    parser.add_argument("--results", default="results")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the same-work comparison runs")
    parser.add_argument("--precision", choices=["float32", "bfloat16"], default="float32",
                        help="bfloat16: add a row, the compiled population under bfloat16 autocast")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: PyTorch sees no GPU here")
    out = Path(args.out)
    # torch's compile cache starts empty, so that "from cold" is: an earlier run's kernels on disk would make it warm
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-speed-inductor-")
    kept = read_json(out / "speed.json") if args.keep_same_work else {}
    if args.keep_same_work and "same_work" not in kept:
        parser.error(f"--keep-same-work: {out / 'speed.json'} holds no same-work comparison")
    # a kept comparison keeps the machine's measurements with it: its timings, and the protocols', were made there
    record = {"machine": kept["machine"] if kept else machine(torch.device(args.device)),
              "environment": environment(torch.device(args.device))}
    torch.set_num_threads(1)
    if kept:
        record["same_work"] = {**kept["same_work"], "environment": kept["same_work"].get("environment", kept["environment"])}
    else:
        with tempfile.TemporaryDirectory() as scratch:
            record["same_work"] = same_work(PLANS["quick" if args.quick else "full"], args.data_dir, Path(scratch),
                                            args.device, args.precision)
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
