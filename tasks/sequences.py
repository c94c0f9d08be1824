"""What the synthetic sequence tasks share: reading `FAMILY:ARG` options and padding id lists.

A synthetic task's ARG is comma-separated: an optional leading word, then `key=value` options,
for example `temporal:hard,train=5000,seed=1` or `reverse:train=5-10,test=5-20`. Every option
has a default, so `temporal:easy` and `reverse` alone are complete specs.
"""

import torch


def parse_spec(family: str, arg: str, defaults: dict, positional: str | None = None) -> dict:
    """`word,key=value,...` -> `defaults` updated; unknown keys and bad values name the spec.

    Each value is converted to the type of its default: int, or a (low, high) pair written `A-B`.
    `positional` names the option a leading bare word sets (`temporal:hard` sets `level`).
    """
    options = dict(defaults)
    spec = f"{family}:{arg}"
    for i, part in enumerate(p.strip() for p in arg.split(",") if p.strip()):
        key, eq, value = part.partition("=")
        if not eq:
            if i != 0 or positional is None:
                raise ValueError(f"cannot read {part!r} in task spec {spec!r}: expected key=value")
            key, value = positional, part
        if key not in defaults:
            raise ValueError(f"task {family!r} has no option {key!r} (in {spec!r}); its options are {', '.join(defaults)}")
        options[key] = convert(value, defaults[key], spec, key)
    return options


def convert(value: str, default, spec: str, key: str):
    try:
        if isinstance(default, tuple):
            low, _, high = value.partition("-")
            pair = (int(low), int(high or low))
            if pair[0] > pair[1] or pair[0] < 1:
                raise ValueError
            return pair
        if isinstance(default, int):
            return int(value)
        return value.lower()
    except ValueError:
        raise ValueError(f"bad value {value!r} for {key} in task spec {spec!r}") from None


def pad(rows: list[list[int]], fill: int = 0) -> torch.Tensor:
    """Id lists of different lengths -> (n, longest) long tensor, `fill` after each row's end."""
    out = torch.full((len(rows), max(1, max(len(row) for row in rows))), fill, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out
