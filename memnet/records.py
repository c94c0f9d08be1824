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


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write to a temporary file beside `path`, then rename: readers see the old file or the new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data.encode() if isinstance(data, str) else data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path):
    return json.loads(Path(path).read_text())


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


def environment(device: torch.device) -> dict:
    """What ran: code version, libraries, Python, device, and the command line."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "code_version": code_version(),
        "code": {key: value for key, value in code_identity().items() if key != "diff"},
        "command": " ".join(sys.argv),
        "python": platform.python_version(),
        "libraries": versions,
        "device": device_name(device),
    }
