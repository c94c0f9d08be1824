"""Tasks about where people are, told in other sentence forms: 9, 10, 11, 12, 13, 14, 20.

Shares quoted in comments are counted from the real bAbI v1.2 English files (train + test).
"""

import random

from tasks.generator.tasks_objects import narrate
from tasks.generator.world import GETS, HE, MOVES, THEN, Setting, Story, World, pick_recent, say_move

# Task 9's and 10's statements: 50% moves, about 25% "is in" and 25% negations or disjunctions.
HEARSAY = {"move": 0.5, "is": 0.25, "unsure": 0.25}


def _hearsay(rng: random.Random, setting: Setting, task: int) -> Story:
    """Tasks 9 and 10: some statements only say where a person is not, or two places they may be in.

    Such a statement moves the person, unseen, somewhere else: a negation names the place they
    just left (as in the real files), a disjunction names their new place and a decoy.
    """
    world = World(rng, setting)  # only its people and places are used
    told: dict[str, tuple[str, tuple[str, ...], int]] = {}  # person -> (kind, places, fact)

    def step(story):
        who = rng.choice(world.people)
        kind = rng.choices(list(HEARSAY), list(HEARSAY.values()))[0]
        new = rng.choice([p for p in world.places if p != world.where[who]])
        if kind == "move":
            told[who] = ("at", (new,), story.tell(say_move(rng, who, new)))
        elif kind == "is":
            told[who] = ("at", (new,), story.tell(f"{who} is in the {new}."))
        elif task == 9:
            phrase = rng.choice(("is no longer in", "is not in"))
            told[who] = ("not", (world.where[who],), story.tell(f"{who} {phrase} the {world.where[who]}."))
        else:
            decoy = rng.choice([p for p in world.places if p != new])
            pair = (new, decoy) if rng.random() < 0.5 else (decoy, new)
            told[who] = ("either", pair, story.tell(f"{who} is either in the {pair[0]} or the {pair[1]}."))
        world.where[who] = new

    def ask(story):
        who = pick_recent(rng, story, [(fact, p) for p, (_, _, fact) in told.items()])
        if not who:
            return None
        kind, places, fact = told[who]
        others = [p for p in world.places if p not in places]
        if kind == "at":  # yes 49% (task 9) / 54% (task 10) of these
            place = places[0] if rng.random() < (0.49 if task == 9 else 0.54) else rng.choice(others)
            answer = "yes" if place == places[0] else "no"
        elif kind == "not":
            place, answer = places[0], "no"
        else:  # maybe 58%, no 42% in task 10
            place = rng.choice(places) if rng.random() < 0.58 else rng.choice(others)
            answer = "maybe" if place in places else "no"
        return f"Is {who} in the {place}?", answer, [fact]

    return narrate(rng, setting, step, ask, task)


def simple_negation(rng: random.Random, setting: Setting) -> Story:
    """Task 9: 'Daniel is no longer in the garden.' -> 'Is Daniel in the garden?' no."""
    return _hearsay(rng, setting, 9)


def indefinite_knowledge(rng: random.Random, setting: Setting) -> Story:
    """Task 10: 'Julie is either in the cinema or the kitchen.' -> 'Is Julie in the kitchen?' maybe."""
    return _hearsay(rng, setting, 10)


def _pairs(rng: random.Random, setting: Setting, group: int, task: int, back: tuple[float, ...]) -> Story:
    """Tasks 11 and 13: pairs 'X went to A. Then he/they went to B.', a question after each pair.

    The question is about someone in the pair `d` pairs back, d drawn with weights `back`; their
    own latest pair is cited, so the shares come out as in the real files (task 11: 64/30/6% cite
    the latest, previous and third pair; task 13: 92/8%).
    """
    world, story, pairs = World(rng, setting), Story(), []
    latest: dict[str, tuple[int, int]] = {}  # person -> (named fact, pronoun fact) of their latest pair
    while story.questions < setting.questions:
        for _ in range(max(1, setting.gap // 2)):
            who = rng.sample(world.people, group)
            first = rng.choice([p for p in world.places if all(world.where[w] != p for w in who)])  # nobody stays put
            second = rng.choice([p for p in world.places if p != first])
            subject = " and ".join(who)
            named = story.tell(say_move(rng, subject, first))
            pronoun = "they" if group > 1 else "he" if who[0] in HE else "she"
            then = story.tell(f"{rng.choice(THEN)} {pronoun} {rng.choice(MOVES)} the {second}.")
            for person in who:
                world.where[person], latest[person] = second, (named, then)
            pairs.append(who)
        d = rng.choices(range(min(len(back), len(pairs))), back[: len(pairs)])[0]
        person = rng.choice(pairs[-1 - d])
        story.ask(f"Where is {person}?", world.where[person], latest[person])
    return story


def basic_coreference(rng: random.Random, setting: Setting) -> Story:
    """Task 11: 'Sandra journeyed to the garden. Afterwards she moved to the office.' -> 'Where is Sandra?'"""
    return _pairs(rng, setting, 1, 11, back=(0.37, 0.43, 0.2))


def compound_coreference(rng: random.Random, setting: Setting) -> Story:
    """Task 13: 'John and Mary went back to the hallway. Then they travelled to the kitchen.'"""
    return _pairs(rng, setting, 2, 13, back=(0.8, 0.2))


def conjunction(rng: random.Random, setting: Setting) -> Story:
    """Task 12: 'Sandra and John journeyed to the garden.' -> 'Where is John?'"""
    world = World(rng, setting)

    def step(story):
        who = rng.sample(world.people, 2)
        place = rng.choice([p for p in world.places if all(world.where[w] != p for w in who)])  # nobody stays put
        fact = story.tell(say_move(rng, " and ".join(who), place))
        for person in who:
            world.where[person], world.told_where[person] = place, fact

    def ask(story):
        # 69/27/4% of the real questions cite the latest, second and third statement: a shorter look-back
        who = pick_recent(rng, story, [(fact, p) for p, fact in world.told_where.items()], window=3, decay=0.6)
        return who and (f"Where is {who}?", world.where[who], [world.told_where[who]])

    return narrate(rng, setting, step, ask, 12)


TIMES = ("yesterday", "this morning", "this afternoon", "this evening")  # task 14's four parts of a day
SWAP = 0.25  # a person's facts are told in time order, each neighbouring pair swapped with this chance


def time_reasoning(rng: random.Random, setting: Setting) -> Story:
    """Task 14: 'Yesterday Bill travelled to the cinema. Bill moved to the office this morning.'
    -> 'Where was Bill before the office?' cinema.

    Each person visits distinct places at the four times (the real files sometimes repeat one,
    which makes 'before the L' ambiguous; we don't). Questions come as soon as some person has
    two neighbouring times told, after 2-6 statements as in the real files.
    """
    if len(setting.places) < len(TIMES):
        raise ValueError(f"task 14 needs at least {len(TIMES)} locations, got {len(setting.places)}")
    visits = {p: rng.sample(setting.places, len(TIMES)) for p in setting.people}
    order = {p: _nearly_sorted(rng, len(TIMES)) for p in setting.people}
    told: dict[tuple[str, int], int] = {}  # (person, time) -> fact

    def step(story):
        waiting = [p for p in setting.people if order[p]]
        if waiting:  # once everything is told, questions go on about what was
            who = rng.choice(waiting)
            time = order[who].pop(0)
            place, when, verb = visits[who][time], TIMES[time], rng.choice(MOVES)
            text = f"{who} {verb} the {place} {when}." if rng.random() < 0.5 else f"{when.capitalize()} {who} {verb} the {place}."
            told[who, time] = story.tell(text)

    def ask(story):
        can = [(max(f, told[p, t - 1]), (p, t)) for (p, t), f in told.items() if t > 0 and (p, t - 1) in told]
        if not can:
            return None
        who, time = pick_recent(rng, story, can) or rng.choice(can)[1]
        question = f"Where was {who} before the {visits[who][time]}?"
        return question, visits[who][time - 1], [told[who, time], told[who, time - 1]]

    return narrate(rng, setting, step, ask, 14)


def _nearly_sorted(rng: random.Random, n: int) -> list[int]:
    order, i = list(range(n)), 0
    while i < n - 1:
        if rng.random() < SWAP:
            order[i], order[i + 1] = order[i + 1], order[i]
            i += 1
        i += 1
    return order


# Task 20's motives: where each sends a person and what they get there (fixed by the real files).
MOTIVES = {"hungry": ("kitchen", "apple"), "thirsty": ("kitchen", "milk"),
           "tired": ("bedroom", "pajamas"), "bored": ("garden", "football")}


def agents_motivations(rng: random.Random, setting: Setting) -> Story:
    """Task 20: 'Yann is thirsty.' -> 'Where will yann go?' kitchen; every statement is followed by a
    question. People start one after another and then go where their motive sends them; there
    they get its object unless someone took it before (so, as in the real files, 2-4 gets a story).
    The number of questions follows from the people (`questions_per_story` does not apply).
    """
    story, motive, todo, taken, why = Story(), {}, {}, set(), {}
    for who in setting.people:
        motive[who], todo[who] = rng.choice(sorted(MOTIVES)), ["is", "go", "get"]
    pending, started = list(setting.people), []
    while pending or any(todo[p] for p in started):
        who = rng.choice([p for p in started if todo[p]] + pending[:1])
        if who in pending:
            pending.remove(who)
            started.append(who)
        place, thing = MOTIVES[motive[who]]
        name = who.lower()  # the real questions write names in lower case
        event = todo[who].pop(0)
        if event == "is":
            why[who] = story.tell(f"{who} is {motive[who]}.")
            story.ask(f"Where will {name} go?", place, [why[who]])
        elif event == "go":
            story.tell(say_move(rng, who, place))
            story.ask(f"Why did {name} go to the {place}?", motive[who], [why[who]])
            if thing in taken:
                todo[who].clear()
            taken.add(thing)
        else:
            story.tell(f"{who} {rng.choice(GETS)} the {thing} there.")
            story.ask(f"Why did {name} get the {thing}?", motive[who], [why[who]])
    return story
