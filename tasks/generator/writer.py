"""Write generated tasks as bAbI files: `out_dir/<variant>/qaN_<name>_{train,valid,test}.txt`.

The layout is the official `en-valid` folder's with the official task names in the file names,
so `tasks.babi.load_task(out_dir, variant, N)` reads it like the real archive.
"""

import random
from dataclasses import dataclass
from pathlib import Path

from tasks.generator.tasks import TASKS
from tasks.generator.world import THINGS, Setting

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. `None` means "as in the real bAbI v1.2 files" for that task.

    Story length: `gap` (and `questions_per_story`) lengthen the narrated tasks 1-3, 5-14 (task 14
    runs out of new facts after 4 per person; the questions go on); `distractors` lengthens 4, 17,
    18, 19. Task 20's length follows from `actors`; 15 and 16 have fixed scenes (raise `actors`).
    To train on short stories and test on long ones, generate twice, e.g. `gap=2` and `gap=6`.
    A knob a task has no use for is ignored; a count a task cannot use raises ValueError.
    """

    questions: int = 1000  # questions in train and in test (bAbI: 1000); valid gets max(1, questions // 10)
    seed: int = 0  # master seed; every (task, split) draws its own stream from it, so splits never share stories
    questions_per_story: int | None = None  # None: bAbI's count (5 for most tasks, 1 for 4, 16, 19, 4 for 15, 8 for 17)
    gap: int | None = None  # statements between two chances to ask (None: 2, as in bAbI); raise it for longer stories
    actors: int | None = None  # how many people a story draws from (None: 4, 5 in task 16; at most 8)
    locations: int | None = None  # how many places (None: 6, or what distractors need; at most 9; fixed in task 20)
    objects: int | None = None  # how many portable objects (None: 3, football/apple/milk; at most 4)
    distractors: int = 0  # extra facts per story in tasks 4, 17, 19 (more places/shapes nobody asks about), 18 (per block)

    def __post_init__(self):
        if self.questions < 1:
            raise ValueError(f"questions must be at least 1, got {self.questions}")
        for name in ("questions_per_story", "gap", "actors", "locations", "objects"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be None or at least 1, got {value}")
        if self.distractors < 0:
            raise ValueError(f"distractors must be at least 0, got {self.distractors}")

    def split_questions(self, split: str) -> int:
        """How many questions a split holds (the real en-valid folder holds out 10% of train)."""
        return max(1, self.questions // 10) if split == "valid" else self.questions


def setting_for(task: int, config: GeneratorConfig) -> Setting:
    """The config's knobs made concrete for one task; fails loudly on counts the task cannot use.

    Knobs a task has no use for are ignored (people in task 4, places in task 15, ...).
    """
    spec = TASKS[task]
    places = max(6, spec.least_places + config.distractors) if spec.place_per_distractor else 6
    wanted = {"actors": (config.actors or spec.people, spec.people_pool, spec.least_people),
              "locations": (config.locations or places, spec.places_pool, spec.least_places),
              "objects": (config.objects or 3, THINGS, 1)}
    for what, (count, pool, least) in wanted.items():
        if pool and not least <= count <= len(pool):
            raise ValueError(f"task {task} ({spec.name}) takes {least} to {len(pool)} {what}, got {count}")
    return Setting(
        people=spec.people_pool[:wanted["actors"][0]], places=spec.places_pool[:wanted["locations"][0]],
        things=THINGS[:wanted["objects"][0]], questions=config.questions_per_story or spec.questions,
        gap=config.gap or 2, distractors=config.distractors,
    )


def generate_lines(task: int, split: str, config: GeneratorConfig) -> list[str]:
    """The lines of one task file; stories are drawn until the split holds its questions exactly."""
    spec, setting = TASKS[task], setting_for(task, config)
    rng = random.Random(f"memnet-babi/{config.seed}/{task}/{split}")  # str seeds are stable across runs
    lines, wanted = [], config.split_questions(split)
    while wanted > 0:
        story = spec.make(rng, setting)
        story.keep_questions(min(story.questions, wanted))
        wanted -= story.questions
        lines += story.render(spec.space_before_tab)
    return lines


def generate_babi(out_dir, tasks=range(1, 21), config: GeneratorConfig = GeneratorConfig(), variant: str = "en") -> list[Path]:
    """Write train, valid and test files of each task; returns the paths written."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"no bAbI task {unknown}; tasks are numbered 1-20")
    folder = Path(out_dir) / variant
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for task in tasks:
        for split in SPLITS:
            path = folder / f"qa{task}_{TASKS[task].name}_{split}.txt"
            path.write_text("\n".join(generate_lines(task, split, config)) + "\n")
            written.append(path)
    return written

