"""The one rule that picks the best of several runs, used by every table and by `memnet train --repeats`.

    the lowest validation error wins;
    ties go to the lower seed,
    then to the setting whose name comes first in alphabetical order.

The test error never takes part (choosing by it would report the best test number, not a model you
could have chosen). The tie rule makes the winner a function of the runs alone: never of the order
in which settings were listed on the command line or files were read from disk.

A run is anything the accessors can read; by default a dict with keys "valid" (float, % error),
"seed" (int) and, where runs of several settings compete, "setting" (str, e.g. "memn2n-pe-ls-rn"):

    >>> best_of([{"valid": 1.0, "seed": 1, "setting": "b"}, {"valid": 1.0, "seed": 1, "setting": "a"},
    ...          {"valid": 1.0, "seed": 2, "setting": "a"}, {"valid": 2.0, "seed": 0, "setting": "a"}])
    {'valid': 1.0, 'seed': 1, 'setting': 'a'}
"""

from collections.abc import Callable, Iterable
from typing import TypeVar

Run = TypeVar("Run")

# the rule in words, for the line under every table that uses it
RULE = ("the lowest validation error; ties go to the lower seed, "
        "then to the setting whose name comes first in alphabetical order")


def selection_key(run, valid: Callable = lambda run: run["valid"], seed: Callable = lambda run: run["seed"],
                  setting: Callable = lambda run: run.get("setting", "")) -> tuple[float, int, str]:
    """The key that `best_of` minimises: (validation error, seed, setting name)."""
    return float(valid(run)), int(seed(run)), str(setting(run))


def best_of(runs: Iterable[Run], valid: Callable[[Run], float] = lambda run: run["valid"],
            seed: Callable[[Run], int] = lambda run: run["seed"],
            setting: Callable[[Run], str] = lambda run: run.get("setting", "")) -> Run:
    """The best run by `RULE`. The accessors read a run's validation error, seed and setting name;
    the defaults read dict keys "valid", "seed" and the optional "setting"."""
    runs = list(runs)
    if not runs:
        raise ValueError("best_of needs at least one run")
    return min(runs, key=lambda run: selection_key(run, valid, seed, setting))
