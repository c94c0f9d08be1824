"""Where bAbI data lives: an explicit folder, $MEMNET_DATA, or the per-user cache.

A *data dir* is the folder that holds the archive's variant folders (`en/`, `en-10k/`,
`en-valid/`, ...), i.e. the `tasks_1-20_v1-2/` folder of the official archive.
"""

import os
from pathlib import Path

BABI_URL = "https://dl.fbaipublicfiles.com/babi/tasks_1-20_v1-2.tar.gz"
ARCHIVE_FOLDER = "tasks_1-20_v1-2"  # the top folder inside the official archive


def cache_dir() -> Path:
    """Per-user cache: $MEMNET_CACHE, else $XDG_CACHE_HOME/memnet, else ~/.cache/memnet."""
    if os.environ.get("MEMNET_CACHE"):
        return Path(os.environ["MEMNET_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "memnet"


def cached_babi_dir() -> Path:
    """The data dir that `memnet data babi --download` fills."""
    return cache_dir() / "babi" / ARCHIVE_FOLDER


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data dir to read: the argument, else $MEMNET_DATA, else the cache."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("MEMNET_DATA"):
        return Path(os.environ["MEMNET_DATA"]).expanduser()
    return cached_babi_dir()


def how_to_get_data(looked_in: Path) -> str:
    """The hint printed whenever bAbI files are missing."""
    return (
        f"looked in {looked_in}. Get the data with `memnet data babi --download` "
        f"(fetches {BABI_URL} into {cached_babi_dir().parent}), or point --data-dir / "
        f"$MEMNET_DATA at a folder holding en/, en-10k/, ... of the official archive, "
        f"or generate bAbI-style data with `memnet data generate --out DIR`."
    )
