"""bAbI examples as padded tensors, and the training-time noise on their time index.

Shapes: n questions, m memory slots, w words per sentence, q words per question, s supporting facts.

Memory holds the `memory_size` most recent statements, oldest first, padding after them:

    story        (n, m, w)  word ids, 0 = padding
    query        (n, q)     word ids
    target       (n,)       answer id
    memory_mask  (n, m)     True on slots that hold a sentence
    time         (n, m)     recency: 0 = the most recent sentence, 1 the one before, ...
    supporting   (n, s)     memory slots of the supporting facts, -1 = none (or fell out of memory)
    task         (n,)       bAbI task number
"""

import math

import torch

from tasks.vocab import Vocab

DEFAULT_MEMORY_SIZE = 50  # "the 50 most recent sentences" (Sukhbaatar et al. 2015, sec. 4.2)
NOISE_FRACTION = 0.1  # random noise: up to 10% empty memories (ibid., sec. 4.2)


def time_slots(memory_size: int) -> int:
    """Size of the temporal-encoding table: recency indices plus room for the random-noise gaps."""
    return memory_size + math.ceil(NOISE_FRACTION * memory_size)


def encode(examples, vocab: Vocab, memory_size: int = DEFAULT_MEMORY_SIZE) -> dict[str, torch.Tensor]:
    """Pad a list of `Example`s into the tensors above (see the module docstring)."""
    kept = [example.story[-memory_size:] for example in examples]
    m = max(1, max(len(story) for story in kept))
    w = max([1] + [len(sentence) for story in kept for sentence in story])
    q = max(len(example.question) for example in examples)
    s = max(1, max(len(example.supporting) for example in examples))
    n = len(examples)
    story = torch.zeros(n, m, w, dtype=torch.long)
    query = torch.zeros(n, q, dtype=torch.long)
    supporting = torch.full((n, s), -1, dtype=torch.long)
    lengths = torch.tensor([len(sentences) for sentences in kept])
    for i, (example, sentences) in enumerate(zip(examples, kept)):
        for slot, sentence in enumerate(sentences):
            story[i, slot, : len(sentence)] = torch.tensor(vocab.encode(sentence))
        query[i, : len(example.question)] = torch.tensor(vocab.encode(example.question))
        dropped = len(example.story) - len(sentences)  # oldest statements beyond the memory size
        slots = [fact - dropped for fact in example.supporting if fact >= dropped]
        supporting[i, : len(slots)] = torch.tensor(slots, dtype=torch.long)
    slot = torch.arange(m)
    return {
        "story": story,
        "query": query,
        "target": torch.tensor([vocab.id(example.answer) for example in examples]),
        "memory_mask": slot < lengths[:, None],  # (n, m)
        "time": (lengths[:, None] - 1 - slot).clamp(min=0),  # (n, m)
        "supporting": supporting,
        "task": torch.tensor([example.task for example in examples]),
    }


def add_time_noise(time: torch.Tensor, memory_mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random noise: insert up to 10% empty memories into the time index (training only).

    Each story draws k empty memories, 0 <= k <= ceil(10% of its sentences), and drops each into a
    random gap of its timeline; a sentence's recency grows by the empties more recent than it. Only
    `time` changes, and the sentences keep their order.
    """
    lengths = memory_mask.sum(1)  # (n,)
    most = math.ceil(NOISE_FRACTION * time.shape[1])
    allowed = torch.ceil(NOISE_FRACTION * lengths.float())  # (n,)
    count = (torch.rand(len(time), generator=generator) * (allowed + 1)).long()  # (n,) k per story
    gap = (torch.rand(len(time), most, generator=generator) * (lengths[:, None] + 1)).long()  # (n, e) gap g: before recency g
    real = torch.arange(most) < count[:, None]  # (n, e) the first k draws are used
    shift = ((gap[:, :, None] <= time[:, None, :]) & real[:, :, None]).sum(1)  # (n, m) empties more recent than each slot
    return torch.where(memory_mask, time + shift, time)
