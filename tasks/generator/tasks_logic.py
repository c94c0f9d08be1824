"""Tasks that state a small fixed scene, then ask about it: 4, 15, 16, 17, 18, 19.

Shares quoted in comments are counted from the real bAbI v1.2 English files (train + test).
"""

import random

from tasks.generator.world import Setting, Story

DIRECTIONS = {"north": (0, 1), "south": (0, -1), "east": (1, 0), "west": (-1, 0)}
OPPOSITE = {"north": "south", "south": "north", "east": "west", "west": "east"}


def _attach(rng: random.Random, where: dict, name: str) -> tuple[str, str, str]:
    """Put `name` on a free grid cell next to a random placed node; returns the edge (name, direction, node)."""
    taken = set(where.values())
    free = [(node, d) for node, (x, y) in where.items() for d, (dx, dy) in DIRECTIONS.items() if (x + dx, y + dy) not in taken]
    node, d = rng.choice(free)
    where[name] = (where[node][0] + DIRECTIONS[d][0], where[node][1] + DIRECTIONS[d][1])
    return name, d, node


def _say_edge(rng: random.Random, edge: tuple[str, str, str]) -> str:
    """'The A is north of the B.' or, half the time, the same edge from the other end."""
    a, d, b = edge
    return f"The {a} is {d} of the {b}." if rng.random() < 0.5 else f"The {b} is {OPPOSITE[d]} of the {a}."


def _places(setting: Setting, needed: int, task: int) -> None:
    if len(setting.places) < needed:
        raise ValueError(f"task {task} needs {needed} locations for {setting.distractors} distractors, "
                         f"got {len(setting.places)} (raise `locations`, at most 9)")


def two_arg_relations(rng: random.Random, setting: Setting) -> Story:
    """Task 4: 'The garden is west of the bedroom.' -> 'What is west of the bedroom?' garden.

    Three places in a line, two facts; the real files word the pair as a chain (45%), with a
    shared object (43%) or a shared subject (12%). Both question forms answer a fact's subject.
    """
    _places(setting, 3 + setting.distractors, 4)
    names = rng.sample(setting.places, 3 + setting.distractors)
    p0, p1, p2 = names[:3]
    d = rng.choice(sorted(DIRECTIONS))
    back = OPPOSITE[d]
    shape = rng.choices(("chain", "object", "subject"), (0.45, 0.43, 0.12))[0]
    if shape == "chain":
        facts = [(p0, d, p1), (p1, d, p2)] if rng.random() < 0.5 else [(p1, back, p0), (p2, back, p1)]
    else:
        facts = [(p0, d, p1), (p2, back, p1)] if shape == "object" else [(p1, back, p0), (p1, d, p2)]
    rng.shuffle(facts)
    lines = [f"The {a} is {rel} of the {b}." for a, rel, b in facts]
    where = {p1: (0, 0), p0: DIRECTIONS[d], p2: DIRECTIONS[back]}
    for name in names[3:]:
        lines.insert(rng.randrange(len(lines) + 1), _say_edge(rng, _attach(rng, where, name)))
    story = Story()
    ids = [story.tell(line) for line in lines]
    for _ in range(setting.questions):
        subject, rel, obj = rng.choice(facts)
        fact = ids[lines.index(f"The {subject} is {rel} of the {obj}.")]
        question = f"What is {rel} of the {obj}?" if rng.random() < 0.5 else f"What is the {obj} {OPPOSITE[rel]} of?"
        story.ask(question, subject, [fact])
    return story


def path_finding(rng: random.Random, setting: Setting) -> Story:
    """Task 19: six places on a grid joined by five facts -> 'How do you go from the A to the C?' n,w.

    Any two places two steps apart are asked about. The real files state one of the two steps
    last in 58% of stories (40% by chance): we move one there in 30% of stories.
    """
    count = 6 + setting.distractors
    _places(setting, count, 19)
    names = rng.sample(setting.places, count)
    while True:  # the real maps are never a bare chain: some place always has 3 or 4 neighbours
        where, edges = {names[0]: (0, 0)}, []
        for name in names[1:]:
            edges.append(_attach(rng, where, name))
        ends = [x for a, _, b in edges for x in (a, b)]
        if max(ends.count(x) for x in ends) > 2:
            break
    step = {}  # (from, to) -> (direction letter, edge)
    for a, d, b in edges:
        step[b, a] = (d[0], (a, d, b))
        step[a, b] = (OPPOSITE[d][0], (a, d, b))
    routes = [(x, y, z) for (x, y) in step for (y2, z) in step if y2 == y and z != x]
    start, middle, end = rng.choice(routes)
    path = [step[start, middle][1], step[middle, end][1]]
    rng.shuffle(edges)
    if edges[-1] not in path and rng.random() < 0.3:
        i = edges.index(rng.choice(path))
        edges[i], edges[-1] = edges[-1], edges[i]
    story = Story()
    ids = {edge: story.tell(_say_edge(rng, edge)) for edge in edges}
    answer = f"{step[start, middle][0]},{step[middle, end][0]}"
    for _ in range(setting.questions):
        story.ask(f"How do you go from the {start} to the {end}?", answer, [ids[path[0]], ids[path[1]]])
    return story


SPECIES = {"mouse": "mice", "cat": "cats", "sheep": "sheep", "wolf": "wolves"}  # task 15: singular -> plural


def basic_deduction(rng: random.Random, setting: Setting) -> Story:
    """Task 15: 'Cats are afraid of mice. Emily is a cat.' -> 'What is emily afraid of?' mouse.

    Each species fears another; the real files open with a rule and then favour rules early (we
    merge the rest with rules 3 times as likely to come next). Questions pick names with replacement.
    """
    fears = {s: rng.choice([o for o in SPECIES if o != s]) for s in SPECIES}
    kind = {who: rng.choice(sorted(SPECIES)) for who in setting.people}
    rules = [(s, f"{SPECIES[s].capitalize()} are afraid of {SPECIES[fears[s]]}.")
             for s in rng.sample(sorted(SPECIES), len(SPECIES))]
    names = [(who, f"{who} is a {kind[who]}.") for who in rng.sample(setting.people, len(setting.people))]
    order = [rules.pop(0)]
    while rules or names:
        pick_rule = rng.random() * (3 * len(rules) + len(names)) < 3 * len(rules)
        order.append((rules if pick_rule else names).pop(0))
    story = Story()
    ids = {key: story.tell(text) for key, text in order}
    for _ in range(setting.questions):
        who = rng.choice(setting.people)
        story.ask(f"What is {who.lower()} afraid of?", fears[kind[who]], [ids[who], ids[kind[who]]])
    return story


ANIMALS = ("swan", "lion", "frog", "rhino")
COLORS = ("yellow", "white", "gray", "green")
# Task 16 with 4 described animals: how their species group (sizes), and which group the asked one joins.
GROUPINGS = (((1, 1, 2), 0.6, (0, 1)), ((1, 1, 1, 1), 0.2, (0, 1, 2, 3)), ((1, 3), 0.19, (0, 1)), ((4,), 0.01, (0,)))
SAME_COLOR = 0.5  # an animal copies its species' first colour this often (60% of same-species pairs agree)


def basic_induction(rng: random.Random, setting: Setting) -> Story:
    """Task 16: 'Brian is a frog. Brian is gray. Julius is a frog.' -> 'What color is Julius?' gray.

    The answer is the colour of the most recently introduced animal of the asked one's species;
    as in the real files, animals of one species usually (not always) share a colour, so a few
    stories hold conflicting examples. One question per story (the knob does not apply).
    """
    people = rng.sample(setting.people, len(setting.people))
    asked, known = people[-1], people[:-1]
    if len(known) == 4:
        sizes, _, joinable = rng.choices(GROUPINGS, [g[1] for g in GROUPINGS])[0]
    else:
        sizes, joinable = (1,) * len(known), range(len(known))
    species = rng.sample(ANIMALS, len(sizes)) if len(sizes) <= len(ANIMALS) else [rng.choice(ANIMALS) for _ in sizes]
    kinds = [s for s, n in zip(species, sizes) for _ in range(n)]
    rng.shuffle(kinds)
    kind = dict(zip(known, kinds)) | {asked: species[rng.choice(list(joinable))]}
    first, color = {}, {}
    for who in known:
        fresh = rng.choice(COLORS)
        color[who] = first[kind[who]] if kind[who] in first and rng.random() < SAME_COLOR else fresh
        first.setdefault(kind[who], color[who])
    order, waiting = [], []  # an animal's colour is told after its species, not always right after
    for who in known:
        order.append(("is a", who))
        waiting.append(who)
        while waiting and rng.random() < 0.5:
            order.append(("is", waiting.pop(rng.randrange(len(waiting)))))
    order += [("is", who) for who in rng.sample(waiting, len(waiting))]
    # the asked animal comes last in 31% of real stories, anywhere before that otherwise
    order.insert(len(order) if rng.random() < 0.22 else rng.randrange(len(order) + 1), ("is a", asked))
    story = Story()
    ids = {(how, who): story.tell(f"{who} {how} {kind[who] if how == 'is a' else color[who]}.") for how, who in order}
    twin = max((who for who in known if kind[who] == kind[asked]), key=lambda who: ids["is a", who])
    story.ask(f"What color is {asked}?", color[twin], [ids["is a", asked], ids["is a", twin], ids["is", twin]])
    return story


SHAPES = ("red square", "blue square", "yellow square", "pink rectangle", "red sphere", "triangle")
RELATIONS = {"above": (0, 1), "below": (0, -1), "to the left of": (-1, 0), "to the right of": (1, 0)}
FLIP = {"above": "below", "below": "above", "to the left of": "to the right of", "to the right of": "to the left of"}


def positional_reasoning(rng: random.Random, setting: Setting) -> Story:
    """Task 17: 'The red sphere is below the yellow square. The triangle is to the right of the red
    sphere.' -> 'Is the triangle below the yellow square?' yes.

    Shapes sit on grid cells, each fact one step apart; questions ask about the two shapes not
    shared by the facts, yes half the time (then uniformly among the relations giving that answer).
    """
    if 3 + setting.distractors > len(SHAPES):
        raise ValueError(f"task 17 has {len(SHAPES)} shapes: at most {len(SHAPES) - 3} distractors")
    a, b, c, *extra = rng.sample(SHAPES, 3 + setting.distractors)
    rel1 = rng.choice(sorted(RELATIONS))
    where = {b: (0, 0), a: RELATIONS[rel1]}
    shared, other = (a, b) if rng.random() < 0.5 else (b, a)
    rel2 = rng.choice([r for r in sorted(RELATIONS) if _plus(where[shared], RELATIONS[r]) != where[other]])
    where[c] = _plus(where[shared], RELATIONS[rel2])
    lines = [(other, f"The {a} is {rel1} the {b}."), (c, _say_shapes(rng, c, rel2, shared))]
    for name in extra:  # distractors: more shapes on free cells, never asked about
        name, d, node = _attach(rng, where, name)
        lines.insert(rng.randrange(len(lines) + 1), (None, _say_shapes(rng, name, COMPASS[d], node)))
    story = Story()
    fact_of = {key: story.tell(text) for key, text in lines}
    for _ in range(setting.questions):
        want = rng.random() < 0.5
        options = [(x, r, y) for x, y in ((other, c), (c, other)) for r, v in sorted(RELATIONS.items())
                   if (_dot(where[x], where[y], v) > 0) == want]
        x, r, y = rng.choice(options)
        story.ask(f"Is the {x} {r} the {y}?", "yes" if want else "no", [fact_of[x], fact_of[y]])
    return story


COMPASS = {"north": "above", "south": "below", "west": "to the left of", "east": "to the right of"}


def _say_shapes(rng: random.Random, x: str, rel: str, y: str) -> str:
    return f"The {x} is {rel} the {y}." if rng.random() < 0.5 else f"The {y} is {FLIP[rel]} the {x}."


def _plus(p, v):
    return p[0] + v[0], p[1] + v[1]


def _dot(p, q, v) -> int:
    """How far p lies from q along direction v (> 0: p is that way of q)."""
    return (p[0] - q[0]) * v[0] + (p[1] - q[1]) * v[1]


# Task 18's things, smallest first; the last 4 take a random order in each story.
ITEMS = ("chocolate", "box of chocolates", "box", "chest", "suitcase", "container")


def size_reasoning(rng: random.Random, setting: Setting) -> Story:
    """Task 18: 'The box is bigger than the chest. The chest is bigger than the chocolate.'
    -> 'Does the box fit in the chocolate?' no.

    Facts come in blocks of 5 (+ distractors) random true comparisons, phrased either way; questions follow the
    first block that holds a two-step chain (78% of real stories need one block). Each question
    needs exactly that chain: yes half the time, each of the two wordings half the time.
    """
    size = {item: rank for rank, item in enumerate(ITEMS[:2] + tuple(rng.sample(ITEMS[2:], len(ITEMS) - 2)))}
    story, facts = Story(), []  # facts: (bigger, smaller, id)
    for _ in range(100):
        for _ in range(5 + setting.distractors):
            big, small = sorted(rng.sample(ITEMS, 2), key=size.get, reverse=True)
            text = f"The {big} is bigger than the {small}." if rng.random() < 0.5 else f"The {small} fits inside the {big}."
            facts.append((big, small, story.tell(text)))
        chains = [(f, g) for f in facts for g in facts if f[1] == g[0]]
        if chains:
            break
    else:
        raise ValueError("task 18: no two-step comparison after 100 blocks of facts")
    for _ in range(setting.questions):
        (big, _, f), (_, small, g) = rng.choice(chains)
        yes, bigger = rng.random() < 0.5, rng.random() < 0.5
        x, y = (big, small) if yes else (small, big)
        question = f"Is the {x} bigger than the {y}?" if bigger else f"Does the {y} fit in the {x}?"
        story.ask(question, "yes" if yes else "no", [f, g] if yes else [g, f])
    return story
