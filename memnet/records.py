"""Run records: files written atomically, and the facts that make a number reproducible."""

import functools
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import torch

LIBRARIES = ("torch", "numpy", "einops", "datasets", "wandb", "pydantic", "filelock")


class RecordError(ValueError):
    """A record on disk that cannot be read (cut short, corrupt, not ours): one line naming the file and what to do next."""


def next_step(path: Path) -> str:
    """What to do about a damaged record, by its name (callers that know better pass their own hint)."""
    if path.name == "checkpoint.pt":
        return ("delete it and run the same `memnet train ... --resume` to train the run again from the start "
                "(or restore the file from a copy)")
    if path.name == "summary.json":
        return ("delete it and run the same command again (`memnet train ... --resume`, or the same `memnet bench`): "
                "the summary is made again from the run's checkpoint")
    if path.name == "metrics.jsonl":
        return "run the same `memnet train ... --resume` to write the epochs after the checkpoint again, or train the run again"
    return "restore it from a copy, or delete the folder it is in and run the command that made it again"


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write to a temporary file beside `path`, then rename: readers see the old file or the new, never half.

    A failed write (a full disk, a lost mount) removes the temporary file and leaves `path` as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data.encode() if isinstance(data, str) else data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno is not None:  # say which file, and that it is intact
            raise OSError(error.errno, f"{error.strerror} while writing {path}; it was left as it was") from error
        raise


def write_json(path: str | Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path, hint: str | None = None) -> dict:
    """A JSON record (config.json, summary.json, ...); RecordError names the file and what to do when it is damaged."""
    path = Path(path)
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        problem = "is empty" if not path.stat().st_size else f"is not valid JSON ({error})"
        raise RecordError(f"{path} {problem}: it was cut short or corrupted; {hint or next_step(path)}") from None
    if not isinstance(record, dict):
        raise RecordError(f"{path} holds a JSON {type(record).__name__}, expected a memnet record (an object); "
                          f"{hint or next_step(path)}")
    return record


def read_jsonl(path: str | Path, hint: str | None = None, *, drop_partial_last: bool = False) -> list[dict]:
    """One JSON object per line (metrics.jsonl); RecordError names the file and line of a damaged one.

    `drop_partial_last` forgives what a crash in the middle of an append leaves: a last line that
    does not parse and has no newline after it is dropped.
    """
    path = Path(path)
    lines = path.read_bytes().split(b"\n")
    records = []
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            if drop_partial_last and line_no == len(lines):  # the last piece: no newline after it
                break
            raise RecordError(f"{path}:{line_no}: not valid JSON ({error}): the file was cut short or corrupted; "
                              f"{hint or next_step(path)}") from None
        if not isinstance(record, dict):
            raise RecordError(f"{path}:{line_no}: a JSON {type(record).__name__}, expected one object per line; "
                              f"{hint or next_step(path)}")
        records.append(record)
    return records


def load_checkpoint(path: str | Path, hint: str | None = None, **options) -> dict:
    """`torch.load(path, weights_only=True)` (no arbitrary pickles); RecordError names the file when it is damaged.

    `options` go to torch.load (e.g. map_location). A missing file raises FileNotFoundError as usual.
    """
    path = Path(path)
    try:
        saved = torch.load(path, weights_only=True, **options)
    except OSError:
        raise
    except Exception as error:  # a cut-short zip, a foreign pickle, ...: torch's messages do not name the file
        detail = str(error).strip().splitlines()[0].split(". ")[0][:120] if str(error).strip() else type(error).__name__
        raise RecordError(f"{path} cannot be read as a checkpoint ({detail}): it was cut short or corrupted; "
                          f"{hint or next_step(path)}") from None
    if not isinstance(saved, dict):
        raise RecordError(f"{path} holds a {type(saved).__name__}, expected a memnet checkpoint; {hint or next_step(path)}")
    return saved


def check_output_folder(folder: str | Path, what: str = "--out") -> None:
    """Refuse, before any work, a folder that cannot be written: a file in its place, a file where one of its
    parents should be, or a folder (its own, or the nearest that exists) without write permission.

    Creates nothing: missing folders are made later, by the command that writes them.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{what} {folder} is a file, expected a folder; pick another {what}")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise FileExistsError(f"{what} {folder}: {existing} is a file, so no folder can be made under it; pick another {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{what} {folder}: {existing} is not writable by this user; pick another {what}, "
                              f"or change the folder's permissions")


def check_output_file(path: str | Path, what: str, example: str = "attention.html") -> None:
    """Refuse, before any work, a file that cannot be written: a folder in its place, a missing or unwritable folder."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a folder, expected the name of a file to write, e.g. {path / example}")
    if not path.parent.is_dir():
        problem = "is a file" if path.parent.exists() else "does not exist"
        raise FileNotFoundError(f"{what} {path}: its folder {path.parent} {problem}; make the folder first, or pick another {what}")
    if not os.access(path.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise PermissionError(f"{what} {path}: {path if path.exists() else path.parent} is not writable by this user; "
                              f"pick another {what}")


def save_torch(path: str | Path, obj) -> None:
    """torch.save through `write_atomic`, so an interrupted save leaves the previous checkpoint."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(path, buffer.getvalue())


@functools.cache
def code_identity() -> dict:
    """The code this process imported: its git commit, whether it was dirty, the diff, and a hash of the sources.

    Taken once per process, at its first call: the CLI and every benchmark worker call it as they
    start, so a commit made while a long benchmark runs does not relabel the code its workers hold.
    Changes under results/ do not count: a benchmark writes there while it runs. `source_sha256`
    hashes the package's own .py files, so even a copy outside git is identified.
    """
    repo = Path(__file__).resolve().parent.parent
    sources = hashlib.sha256()
    for path in sorted([*repo.glob("memnet/**/*.py"), *repo.glob("tasks/**/*.py")]):
        sources.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes())
    identity = {"commit": None, "dirty": False, "diff": "", "diff_sha256": None, "source_sha256": sources.hexdigest()}
    try:
        git = functools.partial(subprocess.run, cwd=repo, capture_output=True, text=True, check=True)
        identity["commit"] = git(["git", "rev-parse", "HEAD"]).stdout.strip()
        identity["diff"] = git(["git", "diff", "HEAD", "--", ".", ":!results"]).stdout
        for new_file in git(["git", "ls-files", "--others", "--exclude-standard", "--", "memnet", "tasks", "scripts"]).stdout.split():
            identity["diff"] += f"new file {new_file}\n" + (repo / new_file).read_text(errors="replace")
    except (OSError, subprocess.CalledProcessError):
        return identity  # not a git checkout: the source hash still names the code
    if identity["diff"]:
        identity.update(dirty=True, diff_sha256=hashlib.sha256(identity["diff"].encode()).hexdigest())
    return identity


def code_version() -> str:
    """The commit of the imported code, with '+dirty' when it had uncommitted changes (see `code_identity`)."""
    identity = code_identity()
    if identity["commit"] is None:
        return "unknown (not a git checkout)"
    return identity["commit"] + ("+dirty" if identity["dirty"] else "")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


@functools.cache
def library_versions() -> dict:
    """The installed versions of LIBRARIES, read once a process: each read parses a package's metadata
    (milliseconds), and a population writes every member's record at its start and end."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment(device: torch.device) -> dict:
    """What ran: code version, libraries, Python, device, and the command line."""
    versions = dict(library_versions())
    return {
        "code_version": code_version(),
        "code": {key: value for key, value in code_identity().items() if key != "diff"},
        "command": " ".join(sys.argv),
        "python": platform.python_version(),
        "libraries": versions,
        "device": device_name(device),
    }
