"""One writer per run folder and per benchmark folder.

`hold(folder)` takes an exclusive lock on FOLDER/.memnet.lock (filelock: an OS lock that the
kernel drops when its process dies, so a killed run leaves no lock that blocks the next one) and
writes who holds it to FOLDER/.memnet.owner, which the refusal of a second writer quotes.
"""

import json
import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_FILE, OWNER_FILE = ".memnet.lock", ".memnet.owner"


class FolderInUse(RuntimeError):
    """Another process writes to this folder."""


def owner_of(folder: Path) -> str:
    try:
        owner = json.loads((folder / OWNER_FILE).read_text())
        return f"process {owner['pid']} on {owner['host']} ({owner['command']})"
    except (OSError, ValueError, KeyError):
        return "another process"


@contextmanager
def hold(folder: str | Path, what: str = "run folder"):
    """Hold `folder` for this process; refuse at once (FolderInUse) when another process holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_FILE, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise FolderInUse(f"{what} {folder} is in use by {owner_of(folder)}; wait for it to finish or stop it") from None
    try:
        (folder / OWNER_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                      "command": " ".join(sys.argv)}))
        yield
    finally:
        (folder / OWNER_FILE).unlink(missing_ok=True)
        lock.release()
