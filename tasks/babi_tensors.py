"""bAbI examples as a padded `StoryBatch` (memnet.batches, where the fields and their shapes are).

Shapes: n questions, m memory slots, w words per sentence, q words per question, s supporting facts.
Memory holds the `memory_size` most recent statements, oldest first, padding after them; `time` is
recency (0 = the most recent sentence) and `supporting` holds memory slots (-1 = none, or fell out of
memory). The random noise on `time` is `StoryBatch.with_time_noise`.
"""

import torch

from memnet.batches import StoryBatch
from tasks.vocab import Vocab

DEFAULT_MEMORY_SIZE = 50  # "the 50 most recent sentences" (Sukhbaatar et al. 2015, sec. 4.2)


def encode(examples, vocab: Vocab, memory_size: int = DEFAULT_MEMORY_SIZE) -> StoryBatch:
    """Pad a list of `Example`s into a StoryBatch (see the module docstring)."""
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
    return StoryBatch(
        story=story,
        query=query,
        memory_mask=slot < lengths[:, None],  # (n, m)
        time=(lengths[:, None] - 1 - slot).clamp(min=0),  # (n, m)
        supporting=supporting,
        target=torch.tensor([vocab.id(example.answer) for example in examples]),
        task=torch.tensor([example.task for example in examples]),
    )
