"""Progress that reads well where it lands: tqdm's bar on a terminal, a plain line every few seconds elsewhere.

A bar redraws itself with carriage returns; in a file (`memnet demo 2>&1 | tee log`, a CI log, a Ray
driver's log) every redraw stays, thousands of them on one line. So when the stream is not a terminal,
`progress_bar` returns `PlainProgress`, which writes the bar's own text (tqdm's `format_meter`: count, elapsed
time, time left, the postfix with loss and error) as one line every `every` seconds and once at the end:

    memn2n babi:1 seed 0: 40/120 epoch [00:20<00:40, 2.00epoch/s, loss=0.912, valid_err=23.0%]

Both answer the calls the loops make: `update`, `set_postfix`, `set_postfix_str`, `write`, `close`, `total`.
"""

import re
import sys
import time

from tqdm import tqdm

PLAIN_EVERY = 10.0  # seconds between plain lines: often enough to follow a run, rare enough to read a log
PLAIN_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


def progress_bar(total: float, desc: str, *, enabled: bool = True, unit: str = "it", initial: float = 0,
             bar_format: str | None = None, file=None, every: float = PLAIN_EVERY, **bar_options):
    """A tqdm bar when `file` (default stderr) is a terminal, else a `PlainProgress`; `enabled=False`: silent."""
    file = file or sys.stderr
    if not enabled or file.isatty():
        return tqdm(total=total, desc=desc, unit=unit, initial=initial, bar_format=bar_format, file=file,
                    disable=not enabled, dynamic_ncols=True, **bar_options)
    plain = re.sub(r"\|\{bar\}\|\s*", " ", bar_format) if bar_format else PLAIN_FORMAT  # a line draws no bar
    return PlainProgress(total, desc, unit=unit, initial=initial, bar_format=plain, file=file, every=every)


class PlainProgress:
    """The bar's text as plain lines: one every `every` seconds (when `update` or `set_postfix*` comes) and one at
    `close`; never a carriage return."""

    def __init__(self, total: float, desc: str, *, unit: str, initial: float, bar_format: str, file, every: float):
        self.total, self.n, self.initial, self.desc, self.unit = total, initial, initial, desc, unit
        self.bar_format, self.file, self.every, self.postfix = bar_format, file, every, ""
        self.started = self.printed = time.monotonic()
        self.closed = False

    def update(self, n: float = 1) -> None:
        self.n += n
        self.maybe_print()

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())
        self.maybe_print()

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text
        self.maybe_print()

    def write(self, text: str) -> None:
        print(text, file=self.file, flush=True)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.print_line()

    def maybe_print(self) -> None:
        if time.monotonic() - self.printed >= self.every:
            self.print_line()

    def print_line(self) -> None:
        self.printed = time.monotonic()
        line = tqdm.format_meter(self.n, self.total, self.printed - self.started, prefix=self.desc, unit=self.unit,
                                 bar_format=self.bar_format, postfix=self.postfix, initial=self.initial)
        print(line, file=self.file, flush=True)
