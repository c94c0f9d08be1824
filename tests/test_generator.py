"""The bAbI-style generator: deterministic files in the official format, whose answers an
independent reader of the text (written here, sharing no code with the generator) agrees with."""

import re
from collections import deque

import pytest

from tasks.babi import load_task
from tasks.generator import TASK_NAMES, GeneratorConfig, generate_babi
from tasks.generator.writer import generate_lines

OFFICIAL = {
    1: "single-supporting-fact", 2: "two-supporting-facts", 3: "three-supporting-facts", 4: "two-arg-relations",
    5: "three-arg-relations", 6: "yes-no-questions", 7: "counting", 8: "lists-sets", 9: "simple-negation",
    10: "indefinite-knowledge", 11: "basic-coreference", 12: "conjunction", 13: "compound-coreference",
    14: "time-reasoning", 15: "basic-deduction", 16: "basic-induction", 17: "positional-reasoning",
    18: "size-reasoning", 19: "path-finding", 20: "agents-motivations",
}
CONFIG = GeneratorConfig(questions=300, seed=7)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    generate_babi(out, config=CONFIG)
    return out


def stories(source):
    """[(statements {id: text}, questions [(id, text, answer, support ids)])] of a task file or its lines."""
    found = []
    for line in source if isinstance(source, list) else source.read_text().splitlines():
        line_id, text = line.split(" ", 1)
        if int(line_id) == 1:
            found.append(({}, []))
        if "\t" in text:
            question, answer, support = text.split("\t")
            found[-1][1].append((int(line_id), question.strip(), answer, [int(i) for i in support.split()]))
        else:
            found[-1][0][int(line_id)] = text
    return found


def test_names_and_layout(generated):
    assert TASK_NAMES == OFFICIAL
    for task, name in OFFICIAL.items():
        for split in ("train", "valid", "test"):
            assert (generated / "en" / f"qa{task}_{name}_{split}.txt").is_file()


@pytest.mark.parametrize("task", sorted(OFFICIAL))
def test_deterministic_per_seed(task):
    small = GeneratorConfig(questions=40, seed=3)
    first = generate_lines(task, "train", small)
    assert first == generate_lines(task, "train", small)
    assert first != generate_lines(task, "train", GeneratorConfig(questions=40, seed=4))
    assert first != generate_lines(task, "test", small)  # splits draw from different streams


def test_same_bytes_twice(tmp_path):
    for folder in ("a", "b"):
        generate_babi(tmp_path / folder, tasks=[2, 19], config=GeneratorConfig(questions=30))
    for path in (tmp_path / "a" / "en").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / "en" / path.name).read_bytes()


@pytest.mark.parametrize("task", sorted(OFFICIAL))
def test_round_trip_through_loader(generated, task):
    splits = load_task(generated, "en", task)
    assert {k: len(v) for k, v in splits.items()} == {"train": 300, "valid": 30, "test": 300}
    for example in splits["train"]:
        assert example.task == task and example.answer and example.supporting
        assert all(0 <= i < len(example.story) for i in example.supporting)


@pytest.mark.parametrize("task", sorted(OFFICIAL))
def test_support_cites_earlier_statements(generated, task):
    for split in ("train", "valid", "test"):
        for statements, questions in stories(generated / "en" / f"qa{task}_{OFFICIAL[task]}_{split}.txt"):
            ids = sorted(statements) + [q[0] for q in questions]
            assert sorted(ids) == list(range(1, len(ids) + 1))
            for line_id, _, _, support in questions:
                assert support and all(i in statements and i < line_id for i in support)


# ----- an independent reader: replays the statements, answers from what they say -----
NAME = r"(?P<who>[A-Z]\w*(?: and [A-Z]\w*)?)"
MOVE = re.compile(NAME + r" (?:moved|went|went back|travelled|journeyed) to the (?P<place>\w+)\.$")
THEN = re.compile(r"(?:Then|After that|Afterwards|Following that) (?:he|she|they) \w+(?: back)? to the (?P<place>\w+)\.$")
IS_IN = re.compile(NAME + r" is in the (?P<place>\w+)\.$")
NOT_IN = re.compile(NAME + r" is (?:not|no longer) in the (?P<place>\w+)\.$")
EITHER = re.compile(NAME + r" is either in the (?P<a>\w+) or the (?P<b>\w+)\.$")
GET = re.compile(NAME + r" (?:got|took|grabbed|picked up) the (?P<thing>\w+)(?: there)?\.$")
DROP = re.compile(NAME + r" (?:dropped|discarded|put down|left) the (?P<thing>\w+)(?: there)?\.$")
GIVE = re.compile(NAME + r" (?:gave|handed|passed) the (?P<thing>\w+) to (?P<taker>\w+)\.$")
NUMBERS = ["none", "one", "two", "three", "four"]


class Reader:
    """What a careful reader knows after each statement, with the lines that told it."""

    def __init__(self):
        self.knows = {}  # person -> ("at"|"not"|"either", places, {fact ids})
        self.holder, self.object_at = {}, {}  # thing -> person; thing -> (place, {facts}) if known
        self.trail = {}  # thing -> [(place, fact)] places it was seen in, in order
        self.last_touch = {}  # thing -> latest get/drop fact
        self.dealings, self.ever_held = {}, {}  # person -> [(fact, thing)]; person -> things in first-got order
        self.gives, self.subject = [], []  # [(fact, giver, thing, taker)]; who the last named sentence was about

    def read(self, fact, text):
        if m := THEN.match(text):
            named = self.knows[self.subject[0]][2]
            for who in self.subject:
                self.arrive(who, m["place"], fact, named | {fact})
        elif m := MOVE.match(text) or IS_IN.match(text):
            self.subject = m["who"].split(" and ")
            for who in self.subject:
                self.arrive(who, m["place"], fact, {fact})
        elif m := NOT_IN.match(text):
            self.knows[m["who"]] = ("not", {m["place"]}, {fact})
        elif m := EITHER.match(text):
            self.knows[m["who"]] = ("either", {m["a"], m["b"]}, {fact})
        elif m := GET.match(text):
            who, thing = m["who"], m["thing"]
            self.holder[thing], self.last_touch[thing] = who, fact
            self.deal(who, thing, fact)
            self.first_time(who, thing)
            if self.place(who):
                self.object_at[thing] = (self.place(who), {fact} | self.knows[who][2])
                trail = self.trail.setdefault(thing, [])
                if not trail or trail[-1][0] != self.place(who):
                    trail.append((self.place(who), min(self.knows[who][2])))
            else:
                self.object_at.pop(thing, None)
        elif m := DROP.match(text):
            who, thing = m["who"], m["thing"]
            del self.holder[thing]
            self.last_touch[thing] = fact
            self.deal(who, thing, fact)
            if self.place(who):
                self.object_at[thing] = (self.place(who), {fact} | self.knows[who][2])
        elif m := GIVE.match(text):
            self.holder[m["thing"]] = m["taker"]
            self.deal(m["who"], m["thing"], fact)
            self.deal(m["taker"], m["thing"], fact)
            self.first_time(m["taker"], m["thing"])
            self.gives.append((fact, m["who"], m["thing"], m["taker"]))
        else:
            raise AssertionError(f"the reader cannot parse {text!r}")

    def arrive(self, who, place, fact, why):
        self.knows[who] = ("at", {place}, why)
        for thing, holder in self.holder.items():
            if holder == who:
                self.object_at[thing] = (place, {self.last_touch[thing], fact})
                self.trail.setdefault(thing, []).append((place, fact))

    def place(self, who):
        kind, places, _ = self.knows.get(who, (None, set(), None))
        return next(iter(places)) if kind == "at" else None

    def deal(self, who, thing, fact):
        self.dealings.setdefault(who, []).append((fact, thing))

    def first_time(self, who, thing):
        if thing not in self.ever_held.setdefault(who, []):
            self.ever_held[who].append(thing)

    def answer(self, question):
        """(answer, support set) for a question about the story read so far."""
        if m := re.match(r"Where is the (\w+)\?$", question):
            place, why = self.object_at[m[1]]
            return place, why
        if m := re.match(r"Where is (\w+)\?$", question):
            assert self.knows[m[1]][0] == "at"
            return self.place(m[1]), self.knows[m[1]][2]
        if m := re.match(r"Where was the (\w+) before the (\w+)\?$", question):
            trail = self.trail[m[1]]
            i = max(i for i, (place, _) in enumerate(trail) if place == m[2] and i > 0)
            return trail[i - 1][0], {self.last_touch[m[1]], trail[i][1], trail[i - 1][1]}
        if m := re.match(r"Is (\w+) in the (\w+)\?$", question):
            kind, places, why = self.knows[m[1]]
            if kind == "at":
                return ("yes" if m[2] in places else "no"), why
            if kind == "not":
                assert m[2] in places, "a negation only answers for the place it names"
                return "no", why
            return ("maybe" if m[2] in places else "no"), why
        if m := re.match(r"How many objects is (\w+) carrying\?$", question):
            held = [t for t, p in self.holder.items() if p == m[1]]
            return NUMBERS[len(held)], {f for f, _ in self.dealings[m[1]]}
        if m := re.match(r"What is (\w+) carrying\?$", question):
            held = [t for t in self.ever_held.get(m[1], []) if self.holder.get(t) == m[1]]
            return ",".join(held) or "nothing", {f for f, _ in self.dealings[m[1]]}
        return self.answer_give(question)

    def answer_give(self, question):
        forms = [(r"What did (\w+) give to (\w+)\?$", (1, 3), 2), (r"Who gave the (\w+)\?$", (2,), 1),
                 (r"Who did (\w+) give the (\w+) to\?$", (1, 2), 3), (r"Who received the (\w+)\?$", (2,), 3),
                 (r"Who gave the (\w+) to (\w+)\?$", (2, 3), 1)]
        for pattern, slots, wanted in forms:
            if m := re.match(pattern, question):
                give = [g for g in self.gives if all(g[s] == v for s, v in zip(slots, m.groups()))][-1]
                return give[wanted], {give[0]}
        raise AssertionError(f"the reader cannot answer {question!r}")


@pytest.mark.parametrize("task", [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13])
def test_answers_follow_from_the_story(generated, task):
    checked = 0
    for statements, questions in stories(generated / "en" / f"qa{task}_{OFFICIAL[task]}_train.txt"):
        reader, told = Reader(), sorted(statements)
        for line_id, question, answer, support in questions:
            while told and told[0] < line_id:
                reader.read(told[0], statements[told.pop(0)])
            assert reader.answer(question) == (answer, set(support)), (task, statements, question)
            checked += 1
    assert checked == CONFIG.questions


OPPOSITE = {"north": "south", "south": "north", "east": "west", "west": "east"}


def edges(statements):
    """{(a, direction, b): fact} meaning a is `direction` of b, both ways round."""
    found = {}
    for fact, text in statements.items():
        a, direction, b = re.match(r"The (\w+) is (\w+) of the (\w+)\.$", text).groups()
        found[a, direction, b] = found[b, OPPOSITE[direction], a] = fact
    return found


def test_two_arg_relations(generated):
    for statements, questions in stories(generated / "en" / f"qa4_{OFFICIAL[4]}_train.txt"):
        known = edges(statements)
        for _, question, answer, support in questions:
            if m := re.match(r"What is (\w+) of the (\w+)\?$", question):
                direction, anchor = m.groups()
            else:
                anchor, back = re.match(r"What is the (\w+) (\w+) of\?$", question).groups()
                direction = OPPOSITE[back]
            hits = [(a, f) for (a, d, b), f in known.items() if d == direction and b == anchor]
            assert len(hits) == 1 and hits[0][0] == answer and support == [hits[0][1]]


def test_path_finding(generated):
    for statements, questions in stories(generated / "en" / f"qa19_{OFFICIAL[19]}_train.txt"):
        known = edges(statements)
        for _, question, answer, support in questions:
            start, goal = re.match(r"How do you go from the (\w+) to the (\w+)\?$", question).groups()
            routes, queue = {start: []}, deque([start])  # breadth first: the shortest route
            while queue:
                here = queue.popleft()
                for (there, d, a), f in known.items():
                    if a == here and there not in routes:
                        routes[there] = routes[here] + [(d[0], f)]
                        queue.append(there)
            assert ",".join(d for d, _ in routes[goal]) == answer
            assert support == [f for _, f in routes[goal]]


TIMES = {"yesterday": 0, "this morning": 1, "this afternoon": 2, "this evening": 3}
AFRAID = {"mice": "mouse", "cats": "cat", "sheep": "sheep", "wolves": "wolf"}
STEP = {"above": (0, 1), "below": (0, -1), "to the left of": (-1, 0), "to the right of": (1, 0)}
SHAPE = r"the ((?:\w+ )?(?:square|rectangle|sphere|triangle))"
RELATION = SHAPE + r" (above|below|to the left of|to the right of) " + SHAPE


def read_scene(task, statements):
    """What tasks 14-18 and 20 state, as plain data: {key: (value, fact)}."""
    scene = {}
    for fact, text in statements.items():
        if task == 14:
            when = next(t for t in TIMES if text.lower().startswith(t) or text.endswith(t + "."))
            who = next(w for w in text.split() if w[0].isupper() and w not in ("Yesterday", "This"))
            scene[who, TIMES[when]] = (re.search(r" to the (\w+)", text)[1], fact)
        elif task == 15 and (m := re.match(r"(\w+) are afraid of (\w+)\.$", text)):
            scene[AFRAID[m[1].lower()]] = (AFRAID[m[2]], fact)
        elif task in (15, 16) and (m := re.match(r"(\w+) is an? (\w+)\.$", text)):
            scene[m[1], "kind"] = (m[2], fact)
        elif task == 16:
            who, color = re.match(r"(\w+) is (\w+)\.$", text).groups()
            scene[who, "color"] = (color, fact)
        elif task == 17:
            a, rel, b = re.match(RELATION.replace(" (above", " is (above") + r"\.$", text.replace("The", "the", 1)).groups()
            scene.setdefault("edges", []).append((a, STEP[rel], b, fact))
        elif task == 18:
            m = re.match(r"The (.+) (fits inside|is bigger than) the (.+)\.$", text)
            big, small = (m[3], m[1]) if m[2] == "fits inside" else (m[1], m[3])
            scene.setdefault("bigger", []).append((big, small, fact))
        elif task == 20 and (m := re.match(r"(\w+) is (\w+)\.$", text)):
            scene[m[1].lower()] = (m[2], fact)
    return scene


def answer_scene(task, scene, question):
    if task == 14:
        who, place = re.match(r"Where was (\w+) before the (\w+)\?$", question).groups()
        (time,) = [t for (w, t), (p, _) in scene.items() if w == who and p == place]
        return scene[who, time - 1][0], {scene[who, time][1], scene[who, time - 1][1]}
    if task == 15:
        kind, why = scene[re.match(r"What is (\w+) afraid of\?$", question)[1].capitalize(), "kind"]
        return scene[kind][0], {why, scene[kind][1]}
    if task == 16:
        who = re.match(r"What color is (\w+)\?$", question)[1]
        kind, why = scene[who, "kind"]
        twin = max((w for (w, k), (v, _) in scene.items() if k == "kind" and v == kind and (w, "color") in scene),
                   key=lambda w: scene[w, "kind"][1])
        return scene[twin, "color"][0], {why, scene[twin, "kind"][1], scene[twin, "color"][1]}
    if task == 17:
        x, rel, y = re.match("Is " + RELATION + r"\?$", question).groups()
        where = {scene["edges"][0][2]: (0, 0)}
        while len(where) < len({s for e in scene["edges"] for s in (e[0], e[2])}):
            for a, (dx, dy), b, _ in scene["edges"]:
                if b in where and a not in where:
                    where[a] = (where[b][0] + dx, where[b][1] + dy)
                elif a in where and b not in where:
                    where[b] = (where[a][0] - dx, where[a][1] - dy)
        along = (where[x][0] - where[y][0]) * STEP[rel][0] + (where[x][1] - where[y][1]) * STEP[rel][1]
        cites = [next(e[3] for e in scene["edges"] if z in (e[0], e[2])) for z in (x, y)]  # in the question's order
        return ("yes" if along > 0 else "no"), lambda support: support == cites
    if task == 18:
        m = re.match(r"Is the (.+) bigger than the (.+)\?$", question) or re.match(r"Does the (.+) fit in the (.+)\?$", question)
        x, y = m.groups() if "bigger" in question else m.groups()[::-1]  # is x bigger than y?
        bigger = {(b, s) for b, s, _ in scene["bigger"]}
        for _ in range(len(scene["bigger"])):  # transitive closure
            bigger |= {(a, d) for a, b in bigger for c, d in bigger if b == c}
        assert ((x, y) in bigger) != ((y, x) in bigger)
        fact = {f: (b, s) for b, s, f in scene["bigger"]}

        def chain(support):  # the two cited comparisons compose to the asked one
            (b1, s1), (b2, s2) = (fact[f] for f in support)
            return (s1 == b2 and {b1, s2} == {x, y}) or (s2 == b1 and {b2, s1} == {x, y})

        return ("yes" if (x, y) in bigger else "no"), chain
    who = re.match(r"(?:Where will|Why did) (\w+)", question)[1]
    motive, why = scene[who]
    places = {"hungry": "kitchen", "thirsty": "kitchen", "tired": "bedroom", "bored": "garden"}
    return (places[motive] if question.startswith("Where") else motive), {why}


@pytest.mark.parametrize("task", [14, 15, 16, 17, 18, 20])
def test_scene_answers(generated, task):
    for statements, questions in stories(generated / "en" / f"qa{task}_{OFFICIAL[task]}_train.txt"):
        for line_id, question, answer, support in questions:
            scene = read_scene(task, {f: t for f, t in statements.items() if f < line_id})
            expected, cites = answer_scene(task, scene, question)
            assert expected == answer, (statements, question)
            assert cites(support) if callable(cites) else cites == set(support), (statements, question)


def test_config_fails_loudly():
    with pytest.raises(ValueError):
        GeneratorConfig(questions=0)
    with pytest.raises(ValueError):
        generate_lines(1, "train", GeneratorConfig(actors=99))
    with pytest.raises(ValueError):
        generate_lines(19, "train", GeneratorConfig(distractors=10))


def test_longer_stories_on_request():
    def mean_statements(config):
        found = stories(generate_lines(1, "test", config))
        return sum(len(statements) for statements, _ in found) / len(found)

    assert mean_statements(GeneratorConfig(questions=50, gap=6)) == 3 * mean_statements(GeneratorConfig(questions=50))
    assert mean_statements(GeneratorConfig(questions=50, questions_per_story=10)) == 20
