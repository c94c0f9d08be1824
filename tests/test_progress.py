"""Progress: tqdm's bar on a terminal; plain periodic lines (never a carriage return) in a file or a pipe."""

import io
import re
import subprocess
import sys

from tqdm import tqdm

from memnet.progress import PlainProgress, progress_bar

LINE = re.compile(r"^run: (\d+)/10 epoch \[\d\d:\d\d<(\d\d:\d\d|\?), .*loss=\d\.\d+, valid_err=\d+\.\d%\]$")  # ?: no rate yet


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def epochs(bar, count: int) -> None:
    for epoch in range(count):
        bar.set_postfix(loss=f"{1 / (epoch + 1):.3f}", valid_err=f"{50 - epoch:.1f}%")
        bar.update(1)
    bar.close()


def test_in_a_file_progress_is_plain_lines_with_loss_error_and_time_left():
    log = io.StringIO()
    bar = progress_bar(10, "run", unit="epoch", file=log, every=0.0)  # every call due: one line per update
    assert isinstance(bar, PlainProgress)
    epochs(bar, 10)
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) >= 10 and all(LINE.match(line) for line in lines), lines
    assert LINE.match(lines[-1])[1] == "10" and LINE.match(lines[-1])[2] == "00:00"  # done: no time left


def test_in_a_file_lines_come_every_few_seconds_not_every_update():
    log = io.StringIO()
    epochs(progress_bar(10, "run", unit="epoch", file=log, every=3600.0), 10)
    assert len(log.getvalue().splitlines()) == 1  # only the closing line: no hour has passed


def test_the_benchmark_bar_format_loses_its_bar_in_a_file():
    log = io.StringIO()
    bar = progress_bar(100, "grid", file=log, every=0.0, smoothing=0,
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}")
    bar.update(40)
    bar.set_postfix_str("2/5 runs")
    bar.write("a run diverged")
    bar.close()
    assert "\r" not in log.getvalue() and "|" not in log.getvalue()
    assert log.getvalue().splitlines()[-1].startswith("grid:  40% 00:00<")
    assert "a run diverged" in log.getvalue().splitlines()


def test_on_a_terminal_the_bar_is_tqdms():
    screen = Terminal()
    bar = progress_bar(10, "run", unit="epoch", file=screen)
    assert isinstance(bar, tqdm)
    epochs(bar, 3)
    assert "\r" in screen.getvalue()


def test_disabled_progress_writes_nothing():
    log = io.StringIO()
    epochs(progress_bar(10, "run", enabled=False, file=log, every=0.0), 10)
    assert log.getvalue() == ""


def test_train_piped_to_a_file_logs_plain_lines(babi_dir, tmp_path):
    result = subprocess.run([sys.executable, "-m", "memnet.cli", "train", "--task", "babi:1", "--data-dir", str(babi_dir),
                             "--out", str(tmp_path / "run"), "--dim", "8", "--hops", "1", "--epochs", "2"],
                            capture_output=True, text=True, check=True)
    assert "\r" not in result.stderr
    assert re.search(r"^memn2n babi:1 seed 0: \d+/\d+ epoch \[.*<.*loss=.*valid_err=.*%\]$", result.stderr, re.M), result.stderr
