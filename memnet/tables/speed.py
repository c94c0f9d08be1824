"""The speed table (scripts/bench_speed.py): the same work four ways, and the protocols' wall times on the fast path.

    speed.json -> summary.md
"""

from pathlib import Path

from memnet.records import read_json

SPEED_RECORD = "speed.json"
SPEED_PROTOCOLS = {  # speed.json key -> its section's title, and the wall-time targets in minutes on the 2-core CPU and a
    # GPU (the project's speed issue: 1k cold 240 s, warm 200 s, joint 10 min, 10k 15 min; the 1k protocol on one GPU 20 s)
    "protocol_1k": ("The 1k per-task protocol", 4, 20 / 60),
    "protocol_1k_warm": ("The 1k per-task protocol again (torch's compile cache warm)", 200 / 60, 20 / 60),
    "joint": ("Joint training, 10 seeds", 10, None),
    "protocol_10k": ("The 10k per-task protocol", 15, None)}


# the fast path is memnet bench's: populations, each compiled only where compiling pays (memnet.units.worth_compiling)
PATHS = {"compiled_population": "fast path: populations, compiled where it pays"}


def speed_target(run: dict, cpu_minutes: float, gpu_minutes: float | None) -> str:
    where, minutes = ("this CPU", cpu_minutes) if not run["device"].startswith("cuda") else ("one H100/H200", gpu_minutes)
    if minutes is None:
        return "no target on a GPU"
    over = run["seconds"] - 60 * minutes
    verdict = "met" if over <= 0 else f"missed by {over:.1f} s"
    return f"the target on {where}: at most {60 * minutes:.0f} s, {verdict}"


def speed_tables(root: Path) -> dict[Path, str]:
    """summary.md from speed.json: the same work four ways, and the protocols it names on the fast path."""
    record = read_json(root / SPEED_RECORD)
    machine, work = record["machine"], record["same_work"]
    env = work.get("environment", record["environment"])  # the same-work part may come from an earlier run (--keep-same-work)
    device = work.get("device", "cpu")
    lines = ["# Speed", "", f"Made by `{env['command']}` (code `{env['code_version']}`, torch {env['libraries']['torch']}) on "
             f"{machine['cpu']}, {machine['cores']} cores, GPU: {machine['gpu'] or 'none'}. One thread measures "
             f"{machine['matmul_gflops_one_thread']} GFLOP/s (1024² matmul) and {machine['copy_gbytes_per_s_one_thread']} GB/s (copy)."]
    if record["environment"] != env:  # the same-work part kept from an earlier run: say what wrote the rest
        lines[-1] += (f" The protocols' sections were read from their benchmarks' records by `{record['environment']['command']}` "
                      f"(code `{record['environment']['code_version']}`).")
    if "gpu_matmul_gflops" in machine:
        lines[-1] += (f" The GPU measures {machine['gpu_matmul_gflops']} GFLOP/s (8192² matmul, float32), "
                      f"{machine['gpu_matmul_gflops_bfloat16']} in bfloat16, and {machine['gpu_copy_gbytes_per_s']} GB/s (copy).")
    lines += ["", f"## The same work each way, one after another on one thread{' and the GPU' if device == 'cuda' else ''}", "",
              f"{work['work']}.", "", "| path | wall s | mean test error % |", "|---|---|---|"]
    lines += [f"| {PATHS.get(mode, mode.replace('_', ' '))} | {numbers['seconds']} | {numbers['mean_test_error']} |"
              for mode, numbers in work["modes"].items()]
    lines += ["", f"The fast path against eager single runs: **{work['speedup']}x** their speed (above 1: faster); mean test error "
              f"{work['fast_mean_test_error']} against {work['eager_mean_test_error']}. Compiling the populations that compile took "
              f"{work['compile_seconds']} s from cold, timed apart before the rows above; the compiled rows then found torch's compile "
              f"cache warm. Counting that compile too, the fast path ran at "
              f"**{work['eager_seconds'] / (work['fast_seconds'] + work['compile_seconds']):.2f}x** the eager single runs' speed."]
    if "compiled_population_bfloat16" in work["modes"]:
        half = work["modes"]["compiled_population_bfloat16"]
        lines += ["", f"Under bfloat16 autocast (`--precision bfloat16`) the compiled population's mean test error is "
                      f"{half['mean_test_error']}, against {work['fast_mean_test_error']} in float32 "
                      f"({half['mean_test_error'] - work['fast_mean_test_error']:+.2f}), in {half['seconds']} s against {work['fast_seconds']}."]
    for key, (title, cpu_minutes, gpu_minutes) in SPEED_PROTOCOLS.items():
        if key not in record:
            continue
        run = record[key]
        lines += ["", f"## {title} on the fast path", "",
                  f"{run['runs']} runs in **{run['seconds'] / 60:.1f} min** of wall time ({speed_target(run, cpu_minutes, gpu_minutes)}; "
                  f"{run['device']}; code `{run['code_version']}`), mean best-of-N test error {run['mean_best_test_error']} "
                  f"(table: `{run['benchmark']}/summary.md`).",
                  f"Its training steps count {run['train_step_flops'] / 1e12:.2f} TFLOP and at most {run['train_step_bytes'] / 1e12:.2f} TB "
                  f"of memory traffic (each op's inputs and outputs, unfused): {run['achieved_gflops']} GFLOP/s and "
                  f"{run['achieved_gbytes_per_s']} GB/s achieved over the whole run, against {machine['matmul_gflops_one_thread']} GFLOP/s "
                  f"and {machine['copy_gbytes_per_s_one_thread']} GB/s that one thread can do ({machine['cores']} cores here)."]
        if "populations" in run:
            lines += speed_breakdown(run, (gpu_minutes if run["device"].startswith("cuda") else cpu_minutes) * 60, machine["cores"])
    return {root / "summary.md": "\n".join(lines) + "\n"}


def speed_breakdown(run: dict, target_seconds: float | None, cores: int) -> list[str]:
    """Where a protocol's time went, population by population, and what its target asks of a step."""
    lines = ["", "Where the time went: each population's members' seconds, summed from their run records (its worker's time on it, "
             "compile and evaluation included), and of those its first steps (compiling, mostly; one a part where the benchmark cut "
             "it, - where the records predate them); a member-step is one member's share of a training step.", "",
             "| tasks | members | stories padded to | steps | seconds | of which first steps | ms a member-step |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {', '.join(name.split(':')[-1] for name in unit['tasks'])} | {unit['members']} | {unit['story_slots']} slots x "
              f"{unit['story_words']} words | {unit['steps']} | {unit['seconds']} | {unit.get('first_step_seconds') or '-'} | "
              f"{1000 * unit['seconds'] / unit['steps'] / unit['members']:.2f} |" for unit in run["populations"]]
    busy, workers = sum(unit["seconds"] for unit in run["populations"]), run.get("workers") or cores
    lines += ["", f"Together {busy:.0f} s of training on {workers} worker(s): at least {busy / workers:.0f} s of wall time however "
                  f"they share it; the other {run['seconds'] - busy / workers:.0f} s of the {run['seconds']:.0f} went to loading data, "
                  "starting workers and waiting for the last."]
    if target_seconds and busy / workers > target_seconds:
        lines[-1] += (f" The target of {target_seconds:.0f} s needs every step {busy / workers / target_seconds:.2f}x faster "
                      "(or more cores).")
    return lines
