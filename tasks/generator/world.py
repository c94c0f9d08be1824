"""The simulated world behind the generated stories: who is where, who holds what, what the reader was told.

The world knows the truth (every actor and object has a place from the start, hidden until a
sentence reveals it); a `Story` holds the numbered lines the reader sees. Answers are read off
the world and their supporting facts are the ids of the lines that let a reader infer them, so
an answer is only asked when the lines told so far determine it.

Vocabulary and sentence forms are those of bAbI v1.2 (Weston et al. 2015, "Towards AI-Complete
Question Answering"), counted from its English files.
"""

import random
from dataclasses import dataclass

# The people, places and portable objects of the real bAbI v1.2 English tasks 1-14 and 20. A task
# takes its own four names first (task 5: Mary/Fred/Bill/Jeff, ...) and, asked for more, the rest.
PEOPLE = ("Mary", "John", "Sandra", "Daniel", "Fred", "Bill", "Jeff", "Julie")
PLACES = ("bathroom", "hallway", "kitchen", "office", "garden", "bedroom", "school", "park", "cinema")
THINGS = ("football", "apple", "milk", "pajamas")
HE = ("John", "Daniel", "Fred", "Bill", "Jeff")  # the others are "she" (task 11)

# Verb phrases, each used uniformly in the real files (counts within 10% of each other).
MOVES = ("moved to", "went to", "went back to", "travelled to", "journeyed to")
GETS = ("got", "took", "grabbed", "picked up")
DROPS = ("dropped", "discarded", "put down", "left")
GIVES = ("gave", "handed", "passed")
THEN = ("Then", "After that", "Afterwards", "Following that")  # tasks 11 and 13
NUMBERS = ("none", "one", "two", "three", "four")  # task 7's answers
DROP_THERE = 0.2  # share of drops written "... the milk there." (18-22% in tasks 2, 3, 5-8)


@dataclass(frozen=True)
class Setting:
    """The knobs of `GeneratorConfig` resolved for one task: the exact names a story may use."""

    people: tuple[str, ...]  # actors, the task's bAbI names first
    places: tuple[str, ...]  # locations
    things: tuple[str, ...]  # portable objects
    questions: int  # questions per story
    gap: int  # statements told between two chances to ask (a chance passes when nothing fresh can be asked)
    distractors: int  # extra facts no question needs (tasks 4, 17, 18, 19)


class Story:
    """The numbered lines of one story; ids are 1-based, questions get ids too but are no facts."""

    def __init__(self):
        self.lines: list[tuple[str, str | None, tuple[int, ...]]] = []  # (text, answer, support)
        self.ordinal: dict[int, int] = {}  # statement id -> how many statements came before it
        self.statements = 0
        self.questions = 0

    def tell(self, text: str) -> int:
        """Add a statement; returns its line id."""
        self.lines.append((text, None, ()))
        self.ordinal[len(self.lines)] = self.statements
        self.statements += 1
        return len(self.lines)

    def ask(self, question: str, answer: str, support) -> None:
        support = tuple(support)
        bad = [i for i in support if i not in self.ordinal]
        if bad or not support:
            raise AssertionError(f"question {question!r} cites {support}: not statements of this story")
        self.lines.append((question, answer, support))
        self.questions += 1

    def age(self, fact: int) -> int:
        """How many statements were told after statement `fact` (0: the latest one)."""
        return self.statements - 1 - self.ordinal[fact]

    def keep_questions(self, count: int) -> None:
        """Cut the story right after its `count`-th question (a split's last story may be cut short)."""
        asked = 0
        for i, (_, answer, _) in enumerate(self.lines):
            asked += answer is not None
            if asked == count:
                del self.lines[i + 1:]
                self.questions = count
                return

    def render(self, space_before_tab: bool) -> list[str]:
        """The file lines; bAbI writes `question? \\tanswer` in some tasks, `question?\\tanswer` in others."""
        out = []
        for i, (text, answer, support) in enumerate(self.lines, start=1):
            if answer is None:
                out.append(f"{i} {text}")
            else:
                out.append(f"{i} {text}{' ' if space_before_tab else ''}\t{answer}\t{' '.join(map(str, support))}")
        return out


def pick_recent(rng: random.Random, story: Story, candidates: list, window: int = 5, decay: float = 0.8):
    """One candidate `(newest_fact, payload[, weight])` whose newest fact is among the last `window`
    statements, older ones less likely (weight * decay**age); None when nothing is that fresh.

    In the real files the newest supporting fact of a question is always among the last 5
    statements, and the shares fall from the latest back (about 43/25/16/10/6% in tasks 1-8).
    """
    fresh = [(c[2] if len(c) > 2 else 1.0) * decay ** story.age(c[0]) for c in candidates]
    pool = [(w, c[1]) for w, c in zip(fresh, candidates) if story.age(c[0]) < window]
    if not pool:
        return None
    return rng.choices([p for _, p in pool], [w for w, _ in pool])[0]


def say_move(rng, who: str, place: str) -> str:
    return f"{who} {rng.choice(MOVES)} the {place}."


def say_get(rng, who: str, thing: str, there: float) -> str:
    return f"{who} {rng.choice(GETS)} the {thing}{' there' if rng.random() < there else ''}."


def say_drop(rng, who: str, thing: str) -> str:
    return f"{who} {rng.choice(DROPS)} the {thing}{' there' if rng.random() < DROP_THERE else ''}."


def say_give(rng, giver: str, thing: str, taker: str) -> str:
    return f"{giver} {rng.choice(GIVES)} the {thing} to {taker}."


class World:
    """People and objects in places; tracks the truth and the facts that reveal it to the reader."""

    def __init__(self, rng: random.Random, setting: Setting):
        self.rng, self.people, self.places, self.things = rng, setting.people, setting.places, setting.things
        self.where = {p: rng.choice(self.places) for p in self.people}  # true place of each person
        self.told_where: dict[str, int] = {}  # person -> id of the move that tells where they are now
        self.holder: dict[str, str | None] = {t: None for t in self.things}
        self.lies_at = {t: rng.choice(self.places) for t in self.things}  # place of a thing nobody holds
        self.seen_at: dict[str, tuple[str, tuple[int, int]]] = {}  # thing -> (place, support) as the reader knows it
        self.handled: dict[str, int] = {}  # thing -> id of the last get/drop/give of it
        self.track: dict[str, list[tuple[str, int]]] = {t: [] for t in self.things}  # (place, move) since it was last got
        self.dealings: dict[str, list[tuple[int, str]]] = {p: [] for p in self.people}  # (fact, thing) changing what p holds
        self.first_held: dict[str, list[str]] = {p: [] for p in self.people}  # things p ever held, first time first

    # ----- actions: change the truth, and remember which fact told the reader -----
    def move(self, who: str, place: str, fact: int) -> None:
        self.where[who], self.told_where[who] = place, fact
        for thing in self.carried(who):
            self.seen_at[thing] = (place, (self.handled[thing], fact))
            self.track[thing].append((place, fact))

    def get(self, who: str, thing: str, fact: int) -> None:
        self.holder[thing], self.handled[thing] = who, fact
        self._deal(who, thing, fact)
        self._locate(who, thing, fact)
        self.track[thing] = []  # task 3 asks only about moves made within one carrying

    def drop(self, who: str, thing: str, fact: int) -> None:
        self.holder[thing], self.lies_at[thing], self.handled[thing] = None, self.where[who], fact
        self._deal(who, thing, fact)
        self._locate(who, thing, fact)

    def give(self, giver: str, thing: str, taker: str, fact: int) -> None:
        self.holder[thing], self.handled[thing] = taker, fact
        self._deal(giver, thing, fact)
        self._deal(taker, thing, fact)
        self._locate(taker, thing, fact)
        self.track[thing] = []

    def _deal(self, who: str, thing: str, fact: int) -> None:
        self.dealings[who].append((fact, thing))
        if self.holder[thing] == who and thing not in self.first_held[who]:
            self.first_held[who].append(thing)

    def _locate(self, who: str, thing: str, fact: int) -> None:
        if who in self.told_where:  # the reader knows where `who` is, hence where the thing is
            self.seen_at[thing] = (self.where[who], (fact, self.told_where[who]))
        else:
            self.seen_at.pop(thing, None)

    # ----- what can happen next -----
    def carried(self, who: str) -> list[str]:
        """What `who` holds, in the order they first got it (task 8 lists answers this way)."""
        return [t for t in self.first_held[who] if self.holder[t] == who]

    def step(self, story: Story, weights: dict[str, float], get_there: float = 1.0, carry: float = 0.0,
             person_first: bool = False) -> tuple:
        """Tell one random event of a kind drawn by `weights` ('move', 'get', 'drop', 'give') among those
        possible now, and return (kind, who, place_or_thing, taker, fact).

        A person is drawn with weight 1 + carry * (things they hold). `person_first`: that person acts,
        the kind drawn among what they can do (drops then come the more often the more is held, and
        things stay in hand longer); else the kind is drawn first (any get/drop/give that is possible).
        """
        rng = self.rng
        options = [("move", p, place, None) for p in self.people for place in self.places if place != self.where[p]]
        options += [("get", p, t, None) for t in self.things if self.holder[t] is None
                    for p in self.people if self.where[p] == self.lies_at[t]]
        options += [("drop", p, t, None) for t, p in self.holder.items() if p is not None]
        options += [("give", p, t, q) for t, p in self.holder.items() if p is not None
                    for q in self.people if q != p and self.where[q] == self.where[p]]
        options = [o for o in options if weights.get(o[0], 0) > 0]
        person_weights = [1 + carry * len(self.carried(p)) for p in self.people]
        if person_first:
            who = rng.choices(self.people, person_weights)[0]
            options = [o for o in options if o[1] == who]
        kinds = [k for k in weights if any(o[0] == k for o in options)]
        kind = rng.choices(kinds, [weights[k] for k in kinds])[0]
        options = [o for o in options if o[0] == kind]
        if kind == "move" and not person_first:  # anyone may move: pick the person, then the place
            who = rng.choices(self.people, person_weights)[0]
            options = [o for o in options if o[1] == who]
        _, who, what, taker = rng.choice(options)
        if kind == "move":
            fact = story.tell(say_move(rng, who, what))
            self.move(who, what, fact)
        elif kind == "give":
            fact = story.tell(say_give(rng, who, what, taker))
            self.give(who, what, taker, fact)
        elif kind == "get":
            fact = story.tell(say_get(rng, who, what, get_there))
            self.get(who, what, fact)
        else:
            fact = story.tell(say_drop(rng, who, what))
            self.drop(who, what, fact)
        return kind, who, what, taker, fact
