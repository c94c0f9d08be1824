"""The registry of generated bAbI tasks: number -> name, story function and the real files' defaults."""

from dataclasses import dataclass
from typing import Callable

from tasks.generator import tasks_logic as logic
from tasks.generator import tasks_objects as objects
from tasks.generator import tasks_people as people
from tasks.generator.world import PEOPLE, PLACES

TOWN = ("school", "park", "kitchen", "office", "bedroom", "cinema", "bathroom", "hallway", "garden")  # tasks 10, 14


@dataclass(frozen=True)
class TaskSpec:
    """One task: how to make a story, and what the real bAbI v1.2 files use by default."""

    name: str  # the official file-name part, e.g. "single-supporting-fact"
    make: Callable  # make(rng, setting) -> Story
    people_pool: tuple[str, ...] = PEOPLE  # names, the task's own bAbI names first
    places_pool: tuple[str, ...] = PLACES  # locations, the task's own first
    people: int = 4  # default number of people
    questions: int = 5  # default questions per story
    least_people: int = 1  # fewest people the task can work with
    least_places: int = 2  # fewest locations
    space_before_tab: bool = True  # real files write 'question? \tanswer' (tasks 1-3, 5-14) or 'question?\tanswer'
    place_per_distractor: bool = False  # each distractor is one more location (tasks 4, 19)


TASKS = {
    1: TaskSpec("single-supporting-fact", objects.single_supporting_fact),
    2: TaskSpec("two-supporting-facts", objects.two_supporting_facts),
    3: TaskSpec("three-supporting-facts", objects.three_supporting_facts),
    4: TaskSpec("two-arg-relations", logic.two_arg_relations, people_pool=(), people=0, questions=1, least_people=0,
                least_places=3, space_before_tab=False, place_per_distractor=True),
    5: TaskSpec("three-arg-relations", objects.three_arg_relations, least_people=2,
                people_pool=("Mary", "Fred", "Bill", "Jeff", "John", "Sandra", "Daniel", "Julie")),
    6: TaskSpec("yes-no-questions", objects.yes_no_questions),
    7: TaskSpec("counting", objects.counting),
    8: TaskSpec("lists-sets", objects.lists_sets),
    9: TaskSpec("simple-negation", people.simple_negation),
    10: TaskSpec("indefinite-knowledge", people.indefinite_knowledge, places_pool=TOWN, least_places=3,
                 people_pool=("Fred", "Julie", "Mary", "Bill", "John", "Sandra", "Daniel", "Jeff")),
    11: TaskSpec("basic-coreference", people.basic_coreference),
    12: TaskSpec("conjunction", people.conjunction, least_people=2, least_places=3),
    13: TaskSpec("compound-coreference", people.compound_coreference, least_people=2, least_places=3),
    14: TaskSpec("time-reasoning", people.time_reasoning, places_pool=TOWN, least_places=4,
                 people_pool=("Fred", "Julie", "Mary", "Bill", "John", "Sandra", "Daniel", "Jeff")),
    15: TaskSpec("basic-deduction", logic.basic_deduction, questions=4, places_pool=(), least_places=0,
                 people_pool=("Gertrude", "Emily", "Winona", "Jessica") + PEOPLE, space_before_tab=False),
    16: TaskSpec("basic-induction", logic.basic_induction, people=5, questions=1, least_people=2, places_pool=(),
                 least_places=0, people_pool=("Lily", "Bernhard", "Brian", "Julius", "Greg") + PEOPLE, space_before_tab=False),
    17: TaskSpec("positional-reasoning", logic.positional_reasoning, people_pool=(), people=0, questions=8,
                 least_people=0, places_pool=(), least_places=0, space_before_tab=False),
    18: TaskSpec("size-reasoning", logic.size_reasoning, people_pool=(), people=0, least_people=0, places_pool=(),
                 least_places=0, space_before_tab=False),
    19: TaskSpec("path-finding", logic.path_finding, people_pool=(), people=0, questions=1, least_people=0,
                 least_places=6, space_before_tab=False, place_per_distractor=True),
    20: TaskSpec("agents-motivations", people.agents_motivations, places_pool=(), least_places=0, space_before_tab=False,
                 people_pool=("Jason", "Antoine", "Sumit", "Yann") + PEOPLE),
}

TASK_NAMES = {number: spec.name for number, spec in TASKS.items()}
