"""`memnet demo`: the whole tool in two minutes on a laptop CPU, with nothing downloaded.

Generates bAbI-style tasks with our own world simulator, trains a memory network and an LSTM
baseline on each, prints their test errors side by side, and shows one test story with the
memory network's attention over its sentences at every hop.
"""

import time
from pathlib import Path

from memnet.inspection import attend, load_run, render_terminal
from memnet.models import MODELS
from memnet.spec import resolve
from memnet.train import train_run
from tasks.generator import TASK_NAMES, GeneratorConfig, generate_babi
from tasks.registry import load

DEMO_TASKS = (1, 2, 6)  # one supporting fact, two supporting facts, yes/no questions
# Short schedules that still learn these tasks (the paper's protocol is `memnet train` / `memnet bench`).
SETTINGS = {  # model -> (model options, training options)
    "memn2n": ({"encoding": "position"}, {"epochs": 45, "lr_halve_every": 15, "linear_start": 15, "random_noise": True}),  # PE LS RN, shortened
    "lstm": ({"hidden": 64}, {"epochs": 6, "optimizer": "adam", "lr": 0.005, "lr_halve_every": 0}),
}


def run_demo(out: str | Path | None = None, questions: int = 1000, seed: int = 0, progress: bool = True) -> Path:
    started = time.perf_counter()
    out = Path(out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    data_dir = out / "data"
    print(f"generating bAbI-style tasks {', '.join(map(str, DEMO_TASKS))} ({questions} questions per split) in {data_dir}")
    generate_babi(data_dir, DEMO_TASKS, GeneratorConfig(questions=questions, seed=seed))
    models = [name for name in SETTINGS if name in MODELS]
    errors: dict[int, dict[str, float]] = {}
    shown = None
    for task in DEMO_TASKS:
        data = load(f"babi:{task}", data_dir=data_dir, variant="en")
        for name in models:
            options, training = SETTINGS[name]
            spec = resolve(name, None, options, {**training, "seed": seed}, {"name": f"babi:{task}", "data_dir": str(data_dir)})
            run_dir = out / "runs" / f"{name}-task-{task}"
            summary = train_run(spec, run_dir, progress=progress, data=data)
            errors.setdefault(task, {})[name] = summary["test_error"]["all"]
            if name == "memn2n" and task == 2:
                shown = (run_dir, data)
    print("\ntest error (%) on generated data, one seed each:")
    print(f"{'task':<28}" + "".join(f"{name:>10}" for name in models))
    for task, row in errors.items():
        print(f"{task:>2} {TASK_NAMES[task]:<25}" + "".join(f"{row[name]:>10.1f}" for name in models))
    if shown:
        run_dir, data = shown
        run = load_run(run_dir)
        index = int((data.splits["test"].memory_mask.sum(1) >= 6).nonzero()[0])  # a story with a few sentences
        print("\nwhat the memory network reads, hop by hop (task 2, a test story):\n")
        print(render_terminal(attend(run, "test", [index])[0]))
    print(f"\nfinished in {time.perf_counter() - started:.0f} s; records (configs, metrics, checkpoints, data) in {out}")
    print(f"look closer: memnet inspect {out / 'runs' / 'memn2n-task-2'} --html attention.html")
    return out
