"""Tasks where people walk around and handle objects: 1, 2, 3, 5, 6, 7, 8.

All share one loop (`narrate`): tell `gap` random events, then ask a question if one can be asked
about something fresh (see `pick_recent`), until the story holds its questions. Event weights per
task are fitted to the real files' share of moves, gets, drops and gives.
"""

import random

from tasks.generator.world import NUMBERS, Setting, Story, World, pick_recent

MAX_STATEMENTS = 2000  # a story that long means the setting leaves nothing to ask (e.g. one actor in task 5)


def narrate(rng: random.Random, setting: Setting, step, ask, task: int) -> Story:
    """Tell `setting.gap` events with `step(story)`, then ask `ask(story)` if it returns a question."""
    story = Story()
    while story.questions < setting.questions:
        for _ in range(setting.gap):
            step(story)
        question = ask(story)
        if question:
            story.ask(*question)
        if story.statements > MAX_STATEMENTS:
            raise ValueError(f"task {task}: nothing to ask after {MAX_STATEMENTS} statements with {setting}")
    return story


# Weights of the events a story tells, among those possible at the time; fitted so that the
# shares of moves/gets/drops/gives come out as in the real files (shown after each line).
EVENTS = {
    1: {"move": 1.0},
    2: {"move": 0.5, "get": 0.23, "drop": 0.27},  # 65/20/15%
    3: {"move": 0.28, "get": 0.33, "drop": 0.39},  # 64/19/17% (a person acts first, see World.step)
    5: {"move": 0.32, "get": 0.16, "drop": 0.12, "give": 0.4},  # 55/17/12/17%
    6: {"move": 0.53, "get": 0.26, "drop": 0.21},  # 67/21/12%
    7: {"move": 0.32, "get": 0.16, "drop": 0.11, "give": 0.41},  # 59/19/10/13%
    8: {"move": 0.53, "get": 0.26, "drop": 0.21},  # 66/21/13%
}
# How fast a fresh candidate's chance falls with age (see pick_recent), fitted to the real ages
# of the newest cited fact (tasks 1, 5-8) or of the cited get/drop (tasks 2, 3).
DECAY = {1: 0.9, 2: 1.0, 3: 1.0, 5: 0.5, 6: 0.9, 7: 0.8, 8: 0.8}
# Task 3: a random person acts, one carrying things more often (weight 1 + CARRY per thing): things
# stay in hand 5.3 statements (real: 5.9), the cited moves reach back as far as in the real files
# (18% of them 12+ statements back) and stories are about as long (median 68, real 66).
CARRY = 1.0


def single_supporting_fact(rng: random.Random, setting: Setting) -> Story:
    """Task 1: 'Where is Mary?' answered by her last move."""
    world = World(rng, setting)

    def ask(story):
        who = pick_recent(rng, story, [(fact, p) for p, fact in world.told_where.items()], decay=DECAY[1])
        return who and (f"Where is {who}?", world.where[who], [world.told_where[who]])

    return narrate(rng, setting, lambda story: world.step(story, EVENTS[1]), ask, 1)


def two_supporting_facts(rng: random.Random, setting: Setting) -> Story:
    """Task 2: 'Where is the football?' from who got or dropped it and where they went."""
    world = World(rng, setting)

    def ask(story):
        # Like the real files: cite a get or drop among the last 5 statements (the move may be older),
        # and ask about a held thing only once its holder has moved since getting it.
        known = [t for t, (_, (handled, moved)) in world.seen_at.items() if world.holder[t] is None or moved > handled]
        thing = pick_recent(rng, story, [(world.handled[t], t) for t in known], decay=DECAY[2])
        return thing and (f"Where is the {thing}?", world.seen_at[thing][0], world.seen_at[thing][1])

    return narrate(rng, setting, lambda story: world.step(story, EVENTS[2]), ask, 2)


def three_supporting_facts(rng: random.Random, setting: Setting) -> Story:
    """Task 3: 'Where was the football before the kitchen?' from its trail through carried moves.

    The trail is the places someone carried it to since it was last picked up (the real files
    never ask about the pickup place); "before the L" means before its latest arrival in L (their
    convention). Like them, 80% of questions ask about the trail's latest step, 16% the one before.
    """
    world = World(rng, setting)

    def ask(story):
        # as in task 2, the get or drop cited is among the last 5 statements
        trails = [(world.handled[t], t) for t in world.things if len(world.track[t]) > 1]
        thing = pick_recent(rng, story, trails, decay=DECAY[3])
        if not thing:
            return None
        trail = world.track[thing]
        latest = {place: i for i, (place, _) in enumerate(trail) if i > 0}  # latest arrival in each place
        steps = sorted(latest.values(), reverse=True)
        i = rng.choices(steps, [0.8**n for n in range(len(steps))])[0]
        support = [world.handled[thing], trail[i][1], trail[i - 1][1]]
        return f"Where was the {thing} before the {trail[i][0]}?", trail[i - 1][0], support

    def step(story):
        world.step(story, EVENTS[3], get_there=0.2, carry=CARRY, person_first=True)

    return narrate(rng, setting, step, ask, 3)


# Task 5's question forms and their shares in the real files; each is valid only when the give it
# is about is the latest one its words pick out (else its answer would be ambiguous).
GIVE_QUESTIONS = (
    (0.35, "What did {giver} give to {taker}?", "thing", ("giver", "taker")),
    (0.17, "Who gave the {thing}?", "giver", ("thing",)),
    (0.17, "Who did {giver} give the {thing} to?", "taker", ("giver", "thing")),
    (0.16, "Who received the {thing}?", "taker", ("thing",)),
    (0.15, "Who gave the {thing} to {taker}?", "giver", ("thing", "taker")),
)


def three_arg_relations(rng: random.Random, setting: Setting) -> Story:
    """Task 5: who gave what to whom, asked about a recent give."""
    world = World(rng, setting)
    gives: list[dict] = []

    def step(story):
        kind, giver, thing, taker, fact = world.step(story, EVENTS[5])
        if kind == "give":
            gives.append({"fact": fact, "giver": giver, "thing": thing, "taker": taker})

    def ask(story):
        give = pick_recent(rng, story, [(g["fact"], g) for g in gives], decay=DECAY[5])
        if not give:
            return None
        forms = [(w, q, a) for w, q, a, keys in GIVE_QUESTIONS
                 if all(later["fact"] <= give["fact"] or any(later[k] != give[k] for k in keys) for later in gives)]
        if not forms:  # every wording would pick out a later give
            return None
        _, question, answer = rng.choices(forms, [f[0] for f in forms])[0]
        return question.format(**give), give[answer], [give["fact"]]

    return narrate(rng, setting, step, ask, 5)


def yes_no_questions(rng: random.Random, setting: Setting) -> Story:
    """Task 6: 'Is Mary in the office?' yes or no (half each, as in the real files)."""
    world = World(rng, setting)

    def ask(story):
        who = pick_recent(rng, story, [(fact, p) for p, fact in world.told_where.items()], decay=DECAY[6])
        if not who:
            return None
        place = world.where[who] if rng.random() < 0.5 else rng.choice([p for p in world.places if p != world.where[who]])
        return f"Is {who} in the {place}?", "yes" if place == world.where[who] else "no", [world.told_where[who]]

    return narrate(rng, setting, lambda story: world.step(story, EVENTS[6]), ask, 6)


def counting(rng: random.Random, setting: Setting) -> Story:
    """Task 7: 'How many objects is Mary carrying?'; support: every get, drop and give she took part in.

    After a give the real files ask about the giver 79% of the time: a receiver is a weaker candidate.
    """
    world = World(rng, setting)
    received = set()  # (person, fact) of gives to that person

    def step(story):
        kind, _, _, taker, fact = world.step(story, EVENTS[7])
        if kind == "give":
            received.add((taker, fact))

    def ask(story):
        people = [(deals[-1][0], p, 0.27 if (p, deals[-1][0]) in received else 1.0)
                  for p, deals in world.dealings.items() if deals]
        who = pick_recent(rng, story, people, decay=DECAY[7])
        if not who:
            return None
        held = NUMBERS[len(world.carried(who))]  # NUMBERS goes as far as there are THINGS
        return f"How many objects is {who} carrying?", held, [f for f, _ in world.dealings[who]]

    return narrate(rng, setting, step, ask, 7)


def lists_sets(rng: random.Random, setting: Setting) -> Story:
    """Task 8: 'What is Mary carrying?' -> 'apple,milk' in the order she first got them, or 'nothing'."""
    world = World(rng, setting)

    def ask(story):
        who = pick_recent(rng, story, [(deals[-1][0], p) for p, deals in world.dealings.items() if deals], decay=DECAY[8])
        if not who:
            return None
        support = [f for t in world.first_held[who] for f, dealt in world.dealings[who] if dealt == t]
        return f"What is {who} carrying?", ",".join(world.carried(who)) or "nothing", support

    return narrate(rng, setting, lambda story: world.step(story, EVENTS[8]), ask, 8)
