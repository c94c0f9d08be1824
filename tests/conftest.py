"""Fixtures: tiny bAbI-format folders written by the tests themselves (never copies of the real files)."""

import random
from pathlib import Path

import pytest
import torch

from memnet.batches import DataSizes, StoryBatch, time_slots

torch.set_num_threads(1)  # the test models are tiny: one thread is faster than two fighting over a 2-core CI box

REAL_BABI = Path(__file__).resolve().parents[2] / "shared" / "data" / "babi" / "tasks_1-20_v1-2"

ACTORS = ["mary", "john", "sandra"]
PLACES = ["kitchen", "garden", "office", "hallway"]


def where_is_story(rng: random.Random, moves: int = 4) -> list[str]:
    """A task-1-like story: actors move, then 'Where is X?' answered by X's last move."""
    lines, where, line_id = [], {}, 0
    for _ in range(2):
        for _ in range(moves // 2):
            actor, place = rng.choice(ACTORS), rng.choice(PLACES)
            line_id += 1
            where[actor] = (place, line_id)
            lines.append(f"{line_id} {actor.capitalize()} went to the {place}.")
        actor = rng.choice(sorted(where))
        line_id += 1
        lines.append(f"{line_id} Where is {actor.capitalize()}? \t{where[actor][0]}\t{where[actor][1]}")
    return lines


def write_task(folder: Path, name: str, stories: int, seed: int) -> Path:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(line for _ in range(stories) for line in where_is_story(rng)) + "\n")
    return path


@pytest.fixture
def babi_dir(tmp_path) -> Path:
    """DIR/en/ with task 1 (40 train stories = 80 questions, 10 test stories) and DIR/en-valid/ with a valid file."""
    root = tmp_path / "babi"
    write_task(root / "en", "qa1_single-supporting-fact_train.txt", 40, seed=1)
    write_task(root / "en", "qa1_single-supporting-fact_test.txt", 10, seed=2)
    write_task(root / "en-valid", "qa1_train.txt", 36, seed=3)
    write_task(root / "en-valid", "qa1_valid.txt", 4, seed=4)
    write_task(root / "en-valid", "qa1_test.txt", 10, seed=5)
    return root


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No test reaches the network or the user's cache."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("MEMNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MEMNET_DATA", raising=False)


def tiny_babi_batch(query: list[list[int]]) -> StoryBatch:
    """Two stories, of 3 and 2 sentences of up to 3 word ids (2-7), padded to 4 slots; `query` (2, q) ids."""
    story = torch.tensor([
        [[2, 3, 0], [4, 5, 6], [7, 2, 0], [0, 0, 0]],
        [[3, 3, 0], [5, 0, 0], [0, 0, 0], [0, 0, 0]],
    ])
    mask = (story != 0).any(-1)
    time = (mask.sum(1, keepdim=True) - 1 - torch.arange(4)).clamp(min=0)
    return StoryBatch(story=story, query=torch.tensor(query), memory_mask=mask, time=time,
                      supporting=torch.tensor([[1], [-1]]), target=torch.tensor([3, 5]), task=torch.tensor([1, 1]))


def tiny_sizes(vocab_size: int, **sizes) -> DataSizes:
    """Sizes for the tiny batch: memory of 4 sentences, sentences of up to 3 words; `sizes` on top."""
    return DataSizes(**{"vocab_size": vocab_size, "num_classes": vocab_size, "memory_size": 4, "memory_slots": 0,
                        "sentence_size": 4, "time_slots": time_slots(4), **sizes})
