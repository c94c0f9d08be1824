"""A word <-> id map that is saved with a model and counts the words it has never seen."""

from collections import Counter
from collections.abc import Iterable

PAD, UNK = "<pad>", "<unk>"  # id 0 pads sentences and memories; id 1 stands for unseen words


class Vocab:
    """Ids for words and answer classes; `encode` maps unseen words to UNK and counts them."""

    def __init__(self, words: Iterable[str]):
        self.words = [PAD, UNK] + sorted(set(words) - {PAD, UNK})
        self.index = {word: i for i, word in enumerate(self.words)}
        self.unknown = Counter()  # unseen word -> times it was encoded as UNK

    @classmethod
    def build(cls, examples) -> "Vocab":
        """Every story, question and answer word of the examples (answers are classes: `n,w` is one)."""
        words = set()
        for example in examples:
            for sentence in example.story:
                words.update(sentence)
            words.update(example.question)
            words.add(example.answer)
        return cls(words)

    def __len__(self) -> int:
        return len(self.words)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.words == other.words

    def id(self, word: str) -> int:
        if word in self.index:
            return self.index[word]
        self.unknown[word] += 1
        return self.index[UNK]

    def encode(self, words: Iterable[str]) -> list[int]:
        return [self.id(word) for word in words]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.words[i] for i in ids]

    def state_dict(self) -> dict:
        """Plain lists only, so a checkpoint loads with torch.load(weights_only=True)."""
        return {"words": self.words[2:]}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Vocab":
        return cls(state["words"])
