"""Bad input and faults, as a user meets them through the `memnet` command (issue 17).

One table: each case sets up a fault (a malformed task file, a damaged record, an output path that
cannot be written, a full disk, a download that does not match its checksum, an option out of range)
and names the words its message must hold. Every case asserts the exit code (2), that no traceback
is printed, and that one `memnet ...: error:` line holds the key words: the file and line for data
files, the file for records, the field for options. Nearly every case fails before any training.
"""

import errno
import hashlib
import os
import shutil
from pathlib import Path

import pytest

import memnet.records as records
import tasks.download as download
from memnet.cli import main
from memnet.records import RecordError, read_jsonl, write_json
from memnet.spec import resolve
from memnet.train import train_run
from tasks.babi import parse_file
from tests.conftest import write_task
from tests.test_download import Server, good_members, make_tgz, server  # noqa: F401 (server: the local download server fixture)

TRAIN, TEST = "qa1_single-supporting-fact_train.txt", "qa1_single-supporting-fact_test.txt"
REAL_FDOPEN = os.fdopen
TINY = ["--epochs", "1", "--dim", "4", "--hops", "1", "--quiet"]
GOOD = "1 Mary moved to the bathroom.\n2 John went to the hallway.\n3 Where is Mary? \tbathroom\t1\n"


def write_data(root: Path) -> Path:
    """DIR/en/ with a good task 1: 20 train stories (40 questions), 5 test stories."""
    write_task(root / "en", TRAIN, 20, seed=1)
    write_task(root / "en", TEST, 5, seed=2)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One finished tiny run (1 epoch) that the record cases copy and damage."""
    root = tmp_path_factory.mktemp("trained")
    spec = resolve("memn2n", None, {"dim": 4, "hops": 1}, {"epochs": 1}, {"name": "babi:1", "data_dir": str(write_data(root / "babi"))})
    train_run(spec, root / "run", progress=False)
    return root / "run"


class Env:
    """What a case may use: a fresh data dir, a copy of the trained run, a monkeypatch, a local server."""

    def __init__(self, tmp_path: Path, trained: Path, monkeypatch, server: Server):
        self.tmp, self.monkeypatch, self.server = tmp_path, monkeypatch, server
        self.data = write_data(tmp_path / "babi")
        self.out = tmp_path / "out"
        self._trained = trained

    def train(self, *flags, model_flags: bool = True) -> list:
        """`memnet train` on the data dir into `out`: a tiny MemN2N unless `model_flags` is False; later flags win."""
        return ["train", "--task", "babi:1", "--data-dir", self.data, "--out", self.out,
                *(TINY if model_flags else ["--epochs", "1", "--quiet"]), *flags]

    def bad(self, text: str | bytes, name: str = TRAIN) -> Path:
        """Replace a task file of the data dir; return its path."""
        path = self.data / "en" / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return path

    def run(self) -> Path:
        """A copy of the finished run, to damage."""
        shutil.copytree(self._trained, self.tmp / "run")
        return self.tmp / "run"


def bad_line(text: str, line: int, *words, name: str = TRAIN):
    """A case: the training (or test) file holds `text`; the message names it, the line and `words`."""
    def case(env: Env):
        path = env.bad(text, name)
        return env.train(), [f"{path}:{line}:", *words]
    return case


def damaged(name: str, content: bytes, command: str, *words):
    """A case: a copy of the trained run whose `name` holds `content`; run `command` on it."""
    def case(env: Env):
        run = env.run()
        (run / name).write_bytes(content)
        if name == "checkpoint.pt" and command == "resume":  # an interrupted run: resume reads its checkpoint
            (run / "summary.json").unlink()
        same = ["--preset", "paper", *TINY]  # the spec `trained` ran (the spec's defaults)
        argv = {"resume": ["train", "--task", "babi:1", "--data-dir", env.data, "--out", run, *same, "--resume"],
                "again": ["train", "--task", "babi:1", "--data-dir", env.data, "--out", run, *same],
                "inspect": ["inspect", run], "from": ["train", "--from", run, "--out", env.out, "--quiet"]}[command]
        return argv, [str(run / name), *words]
    return case


def option(*flags_and_words):
    """A case: `memnet train` with `flags`; the message names the field (the words after "->")."""
    cut = flags_and_words.index("->")
    flags, words = flags_and_words[:cut], flags_and_words[cut + 1:]
    return lambda env: (env.train(*flags), list(words))


def unwritable(target: str):
    """os.access says no for `target` (tests may run as root, whom chmod does not stop)."""
    def case(env: Env):
        real = os.access
        env.monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == env.tmp / target else real(path, mode))
        (env.tmp / target).mkdir()
        if target == "locked":
            return ["train", "--task", "babi:1", "--data-dir", env.data, "--out", env.tmp / "locked" / "run", *TINY], \
                [str(env.tmp / "locked"), "not writable"]
        run = env.run()
        return ["inspect", run, "--png", env.tmp / target / "a.png"], ["--png", str(env.tmp / target), "not writable"]
    return case


def disk_full(env: Env):
    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    env.monkeypatch.setattr(os, "fsync", no_space)
    return env.train(), ["No space left on device", str(env.out), "left as it was"]


def download_mismatch(env: Env):
    url = env.server.serve("/babi.tar.gz", make_tgz(good_members()))
    env.monkeypatch.setattr(download, "BABI_URL", url)  # the official address, served here: its published checksum applies
    return ["data", "babi", "--download"], ["SHA-256", download.BABI_SHA256, "was deleted", url]


def download_404(env: Env):
    env.monkeypatch.setattr(download, "BABI_URL", f"http://127.0.0.1:{env.server.port}/gone.tar.gz")
    return ["data", "babi", "--download"], ["HTTP 404", "--data-dir"]


STORIES = GOOD + "1 Sandra went to the garden.\n2 Where is Sandra? \tgarden\t1\n"
CASES = {
    # ---- task files: PATH:LINE, what is wrong, what was expected --------------------------------
    "question tabs turned to spaces": bad_line(GOOD.replace(" \tbathroom\t1", " bathroom 1"), 3, "question without its tab-separated answer", "tabs"),
    "question tabs turned to spaces, two ids": bad_line(GOOD.replace(" \tbathroom\t1", " bathroom 1 2"), 3,
                                                         "question without its tab-separated answer"),
    "question line cut after its ?": bad_line(GOOD.replace(" \tbathroom\t1", ""), 3, "no question in the whole file"),  # a statement
    "line id not a number": bad_line(GOOD.replace("2 John", "two John"), 2, "line id 'two' is not a number", "expected a line id"),
    "line id skips one": bad_line(GOOD.replace("2 John", "4 John"), 2, "line id 4 is out of order", "expected 2"),
    "file starts past 1": bad_line(GOOD.replace("1 Mary", "5 Mary"), 1, "line id 5", "expected 1"),
    "support past the story": bad_line(GOOD.replace("\t1\n", "\t7\n"), 3, "supporting id 7 points past the story"),
    "support at a question": bad_line(STORIES + "3 Where was Sandra? \tgarden\t2\n", 6, "supporting id 2 points at a question",
                                      "expected the id of a statement"),
    "support id 0": bad_line(GOOD.replace("\t1\n", "\t0\n"), 3, "supporting id 0 points at no line"),
    "support not a number": bad_line(GOOD.replace("\t1\n", "\tone\n"), 3, "supporting id 'one' is not a number"),
    "empty answer": bad_line(GOOD.replace("\tbathroom\t", "\t\t"), 3, "empty answer"),
    "answer field cut short": bad_line(GOOD.replace("bathroom\t1\n", "bath"), 3, "no supporting ids after the answer 'bath'", "cut short"),
    "no supporting ids": bad_line(GOOD.replace("\t1\n", "\t\n"), 3, "no supporting ids"),
    "extra tab field": bad_line(GOOD.replace("\t1\n", "\t1\tkitchen\n"), 3, "4 tab-separated fields", "expected 3"),
    "question without words": bad_line(GOOD.replace("Where is Mary? ", "? "), 3, "question before the tab has no words"),
    "id without text": bad_line(GOOD.replace("2 John went to the hallway.", "2"), 2, "nothing after the line id"),
    "not UTF-8": bad_line(GOOD.encode().replace(b"John", b"J\xffhn"), 2, "not UTF-8", "expected UTF-8"),
    "empty train file": bad_line("", 1, "the file is empty"),
    "blank test file": bad_line("\n\n  \n", 1, "the file is empty", name=TEST),
    "file cut after a statement": bad_line(GOOD + "1 Sandra went to the garden.\n", 4, "no question after line 3", "cut short"),
    "missing test file": lambda env: (env.bad(GOOD, TEST).unlink() or env.train(),
                                      [str(env.data / "en" / "qa1_*_test.txt"), "no such file", "test file"]),
    "train too small to split off valid": lambda env: (env.bad(STORIES) and env.train(),
                                                       [str(env.data / "en" / TRAIN), "too small to hold out a validation split",
                                                        "qa1_<name>_valid.txt"]),
    "stats on a bad file": lambda env: (env.bad(GOOD.replace("2 John", "3 John")) and
                                        ["data", "babi", "--data-dir", env.data, "--stats"],
                                        [f"{env.data / 'en' / TRAIN}:2:", "out of order"]),
    # ---- records on disk: the file, and what to do next -----------------------------------------
    "checkpoint cut short (resume)": damaged("checkpoint.pt", b"PK\x03\x04 cut", "resume", "cannot be read as a checkpoint", "--resume"),
    "checkpoint not ours (inspect)": damaged("checkpoint.pt", b"not a checkpoint at all", "inspect", "checkpoint", "--resume"),
    "checkpoint empty (inspect)": damaged("checkpoint.pt", b"", "inspect", "cut short or corrupted"),
    "summary.json corrupt (inspect)": damaged("summary.json", b'{"test_error": {"all": 1.0},\n', "inspect", "not valid JSON", "--resume"),
    "summary.json empty (resume)": damaged("summary.json", b"", "resume", "is empty", "--resume"),
    "config.json corrupt (train again)": damaged("config.json", b'{"spec": {"task"', "again", "not valid JSON", "restore it"),
    "config.json a list (--from)": damaged("config.json", b"[1, 2]", "from", "--from", "expected a memnet record"),
    # ---- output paths, before any work ------------------------------------------------------------
    "--out is a file": lambda env: (env.out.write_text("x") and env.train(), [str(env.out), "is a file"]),
    "--out under a file": lambda env: ((env.tmp / "afile").write_text("x") and env.train("--out", env.tmp / "afile" / "run"),
                                       [str(env.tmp / "afile"), "is a file, so no folder can be made"]),
    "--out in an unwritable folder": unwritable("locked"),
    "--html is a folder": lambda env: (["inspect", env.run(), "--html", env.tmp], ["--html", str(env.tmp), "is a folder"]),
    "--html in a missing folder": lambda env: (["inspect", env.run(), "--html", env.tmp / "nope" / "a.html"],
                                               ["--html", str(env.tmp / "nope"), "does not exist"]),
    "--png in an unwritable folder": unwritable("readonly"),
    "disk full while writing a record": disk_full,
    # ---- download ---------------------------------------------------------------------------------
    "download checksum mismatch": download_mismatch,
    "download not found": download_404,
    # ---- options: each training option and the common model flags, through the CLI ---------------
    "--epochs 0": option("--epochs", "0", "->", "train.epochs"),
    "--batch-size 0": option("--batch-size", "0", "->", "train.batch_size"),
    "--optimizer": option("--optimizer", "rmsprop", "->", "train.optimizer"),
    "--lr 0": option("--lr", "0", "->", "train.lr"),
    "--lr text": option("--lr", "abc", "->", "train.lr", "number"),
    "--lr-halve-every": option("--lr-halve-every", "-1", "->", "train.lr_halve_every"),
    "--clip-norm": option("--clip-norm", "-1", "->", "train.clip_norm"),
    "--linear-start": option("--linear-start", "-1", "->", "train.linear_start"),
    "--linear-start-lr": option("--linear-start-lr", "0", "->", "train.linear_start_lr"),
    "--linear-start-until": option("--linear-start-until", "never", "->", "train.linear_start_until"),
    "--linear-start on lstm": lambda env: (env.train("--model", "lstm", "--linear-start", "2", model_flags=False),
                                           ["train.linear_start", "lstm"]),
    "--random-noise on sequences": lambda env: (["train", "--model", "seq2seq", "--task", "reverse", "--out", env.out,
                                                 "--random-noise", "--quiet"],
                                                ["train.random_noise"]),
    "a model that cannot read the task": lambda env: (["train", "--model", "memn2n", "--task", "reverse", "--out", env.out],
                                                      ["memn2n reads stories", "use --model seq2seq"]),
    "--seed": option("--seed", "-1", "->", "train.seed"),
    "--hops": option("--hops", "0", "->", "hops"),
    "--dim": option("--dim", "0", "->", "dim"),
    "--encoding": option("--encoding", "fourier", "->", "encoding"),
    "--tying": option("--tying", "none", "->", "tying"),
    "--relu without layerwise tying": option("--relu", "->", "relu", "layerwise"),
    "--temporal on lstm": lambda env: (env.train("--model", "lstm", "--temporal", model_flags=False),
                                       ["lstm", "temporal", "unknown option"]),
    "-o unknown key": option("-o", "colour=3", "->", "colour", "unknown option"),
    "-o without =": option("-o", "hidden", "->", "--option", "KEY=VALUE"),
    "--memory-size": option("--memory-size", "0", "->", "task.memory_size"),
    "--model": option("--model", "transformer", "->", "--model", "invalid choice"),
    "--preset": option("--preset", "fast", "->", "preset", "fast"),
    "--task number": lambda env: (["train", "--task", "babi:21", "--out", env.out], ["task 21", "1-20"]),
    "--task family": lambda env: (["train", "--task", "squad:1", "--out", env.out], ["unknown task family", "squad"]),
    "--variant": option("--variant", "fr", "->", "no bAbI folder", "fr"),
    "--device": option("--device", "tpu", "->", "--device", "invalid choice"),
    "--repeats": option("--repeats", "0", "->", "repeats"),
    "--from missing": lambda env: (["train", "--from", env.tmp / "nothing", "--out", env.out], ["--from", str(env.tmp / "nothing")]),
    "inspect --index": lambda env: (["inspect", env.run(), "--index", "999"], ["--index 999", "out of range"]),
    "inspect a missing run": lambda env: (["inspect", env.tmp / "nothing"], [str(env.tmp / "nothing"), "no run directory"]),
    "bench --epochs 0": lambda env: (["bench", "--name", "b", "--results", env.tmp / "results", "--tasks", "1",
                                      "--data-dir", env.data, "--epochs", "0"], ["train.epochs"]),
    "generate --questions 0": lambda env: (["data", "generate", "--out", env.tmp / "gen", "--tasks", "1", "--questions", "0"],
                                           ["questions", "at least 1"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fault_gives_one_clear_line_and_exit_2(name, tmp_path, trained, monkeypatch, server, capsys):
    env = Env(tmp_path, trained, monkeypatch, server)
    argv, words = CASES[name](env)
    with pytest.raises(SystemExit) as stopped:  # any other exception is a traceback: the test fails
        main([str(arg) for arg in argv])
    output = capsys.readouterr()
    text = output.out + output.err
    assert stopped.value.code == 2, text
    assert "Traceback" not in text
    errors = [line for line in output.err.splitlines() if line.startswith("memnet ") and ": error: " in line]
    assert len(errors) == 1, output.err
    missing = [word for word in words if word not in errors[0]]
    assert not missing, f"{missing} not in: {errors[0]}"
    if argv[0] == "train" and "--resume" not in argv:  # refused before training: no record was written
        assert not (env.out / "checkpoint.pt").exists() and not (env.out / "config.json").exists()
        assert not list(env.out.glob(".*.tmp")) if env.out.is_dir() else True


def test_the_table_holds_at_least_30_kinds():
    assert len(CASES) >= 30


# ---- what a person may well have is accepted ------------------------------------------------------

@pytest.mark.parametrize("variant", ["crlf", "bom", "trailing blank lines", "trailing spaces", "no final newline"])
def test_harmless_differences_read_the_same(tmp_path, variant, capsys):
    text = STORIES * 5  # 10 stories: enough to hold out a validation split
    clean = tmp_path / "clean.txt"
    clean.write_text(text)
    edited = {"crlf": text.replace("\n", "\r\n").encode(), "bom": b"\xef\xbb\xbf" + text.encode(),
              "trailing blank lines": (text + "\n\n \n").encode(),
              "trailing spaces": text.replace("\n", "  \n").encode(), "no final newline": text.rstrip("\n").encode()}[variant]
    root = write_data(tmp_path / "babi")
    (root / "en" / TRAIN).write_bytes(edited)
    strip = lambda examples: [(e.story, e.question, e.answer, e.supporting, e.story_id) for e in examples]  # noqa: E731
    assert strip(parse_file(root / "en" / TRAIN, 1)) == strip(parse_file(clean, 1))
    main(["data", "babi", "--data-dir", str(root), "--stats", "--json"])
    assert '"questions": 9' in capsys.readouterr().out  # train: 9 of the 10 questions, valid 1


# ---- a full disk leaves the previous record whole --------------------------------------------------

def test_a_failed_write_keeps_the_old_record_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    write_json(path, {"test_error": {"all": 1.0}})
    def no_space(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    for failing in ("write", "fsync"):
        with monkeypatch.context() as patch:
            if failing == "write":  # half the bytes land, then the disk is full
                patch.setattr(os, "fdopen", lambda fd, mode: FullFile(fd))
            else:  # every byte written, the flush to disk fails
                patch.setattr(os, "fsync", no_space)
            with pytest.raises(OSError, match="No space left on device while writing .*summary.json; it was left as it was"):
                write_json(path, {"test_error": {"all": 99.0}})
        assert records.read_json(path) == {"test_error": {"all": 1.0}}
        assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


class FullFile:
    """A file object whose write fails as on a full disk, after writing part of the data."""

    def __init__(self, fd):
        self.file = REAL_FDOPEN(fd, "wb")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()

    def write(self, data):
        self.file.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_damaged_metrics_line_is_named_and_a_cut_last_line_can_be_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 0}\n{"epoch": 1, "lo\n{"epoch": 2}\n')
    with pytest.raises(RecordError, match=rf"{path}:2: not valid JSON.*--resume"):
        read_jsonl(path)
    path.write_text('{"epoch": 0}\n{"epoch": 1}\n{"epoch": 2, "lo')  # a crash in the middle of an append
    assert read_jsonl(path, drop_partial_last=True) == [{"epoch": 0}, {"epoch": 1}]
    with pytest.raises(RecordError, match=rf"{path}:3:"):
        read_jsonl(path)


# ---- the download checks the published checksum ----------------------------------------------------

def test_download_with_the_published_checksum_lands(server, tmp_path, monkeypatch, capsys):
    body = make_tgz(good_members())
    monkeypatch.setattr(download, "BABI_URL", server.serve("/babi.tar.gz", body))
    monkeypatch.setattr(download, "BABI_SHA256", hashlib.sha256(body).hexdigest())
    main(["data", "babi", "--download"])
    assert "bAbI data ready" in capsys.readouterr().out


def test_a_checksum_mismatch_deletes_the_download(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(download, "BABI_URL", server.serve("/babi.tar.gz", make_tgz(good_members())))
    with pytest.raises(SystemExit):
        main(["data", "babi", "--download"])
    assert "was deleted" in capsys.readouterr().err
    assert list((tmp_path / "cache" / "babi").iterdir()) == []  # no archive, no partial folder, no data dir
