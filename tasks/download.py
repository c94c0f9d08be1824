"""Fetch the official bAbI archive into the per-user cache, safely and atomically.

    download_babi()  ->  ~/.cache/memnet/babi/tasks_1-20_v1-2/{en,en-10k,...}

The steps, each leaving only `memnet-partial-*` names behind if the process dies:

    1. stream BABI_URL into   dest/memnet-partial-XXXX.tar.gz   (checked against Content-Length and
       the archive's published SHA-256; a mismatch deletes the download)
    2. check every member, extract into   dest/memnet-partial-XXXX/
    3. rename   dest/memnet-partial-XXXX/tasks_1-20_v1-2  ->  dest/tasks_1-20_v1-2

Only step 3 makes the data dir appear, so a folder at `dest/tasks_1-20_v1-2` is complete by
construction. A later run deletes any `memnet-partial-*` leftovers before it starts (two runs
racing on the same `dest` can therefore break each other's download; the loser reports an error
and a rerun finds the winner's folder).
"""

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from http.client import HTTPException
from pathlib import Path, PurePosixPath, PureWindowsPath

from tasks.paths import ARCHIVE_FOLDER, BABI_URL, cache_dir

PARTIAL_PREFIX = "memnet-partial-"  # every temporary name in dest starts with this
CHUNK_BYTES = 1 << 20  # read size while streaming the archive
TIMEOUT_S = 60  # socket timeout for connect and each read
# SHA-256 of tasks_1-20_v1-2.tar.gz (15,719,851 bytes) as published by Hugging Face datasets for the
# same archive at its first home, http://www.thespermwhale.com/jaseweston/babi/tasks_1-20_v1-2.tar.gz:
# "download_checksums" in datasets/babi_qa/dataset_infos.json of github.com/huggingface/datasets
# (commit 040102f100964a33fd334e2695f1c493fa6b92db). Facebook publishes no checksum of its own.
BABI_SHA256 = "0364ebde659f14d11bc21744516c5ec49d3d06cb692733f66680771244998898"


class DownloadError(RuntimeError):
    """The bAbI archive could not be downloaded, read, or safely extracted."""


def download_babi(url: str | None = None, dest: Path | None = None, progress: bool = True,
                  sha256: str | None = None) -> Path:
    """Download and extract the bAbI archive; return the data dir `dest/tasks_1-20_v1-2`.

    url defaults to BABI_URL, dest to `cache_dir()/"babi"`. If the data dir already exists it is
    returned without touching the network. `progress` shows a byte progress bar and status lines on
    stderr. The archive must have the SHA-256 `sha256`; for BABI_URL that defaults to the published
    BABI_SHA256 (another url without `sha256` is checked for length only).
    Raises DownloadError on network failure, a checksum mismatch, a corrupt archive, an unsafe member
    (absolute path, `..`, link, device, FIFO) or an archive without the `tasks_1-20_v1-2/` folder.
    """
    url = url or BABI_URL
    expected_sha256 = sha256 or (BABI_SHA256 if url == BABI_URL else None)
    dest = Path(dest) if dest is not None else cache_dir() / "babi"
    target = dest / ARCHIVE_FOLDER
    say = (lambda msg: print(msg, file=sys.stderr)) if progress else (lambda msg: None)

    if _is_complete(target):
        say(f"bAbI already at {target}; not downloading")
        return target
    if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        target.rmdir()  # an empty folder holds nothing to lose
    if target.exists() or target.is_symlink():
        # Only our final rename creates `target`, so something else put this here: leave it to
        # the user rather than delete it.
        raise DownloadError(
            f"{target} exists but does not look like the bAbI data dir (no variant folders such "
            f"as en/); remove it and download again, or pass it with --data-dir if it is yours"
        )

    dest.mkdir(parents=True, exist_ok=True)
    _remove_partials(dest)
    extract_dir = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=dest))
    archive = extract_dir.with_name(extract_dir.name + ".tar.gz")  # same unique stem
    try:
        with open(archive, "xb") as out:
            digest = _fetch(url, out, progress)
        if expected_sha256 and digest != expected_sha256.lower():
            archive.unlink(missing_ok=True)
            raise DownloadError(
                f"the archive from {url} has SHA-256 {digest}, expected the published {expected_sha256}; "
                f"the download was deleted. Run the download again; if it fails the same way, the file at that "
                f"address has changed: check it by hand, unpack it, and pass its {ARCHIVE_FOLDER}/ with --data-dir"
            )
        say(f"extracting into {dest}")
        _extract_checked(archive, extract_dir, url)
        extracted = extract_dir / ARCHIVE_FOLDER
        if not extracted.is_dir():
            top = sorted(p.name for p in extract_dir.iterdir())
            raise DownloadError(
                f"archive from {url} has no {ARCHIVE_FOLDER}/ folder; its top level holds "
                f"{_preview(top)}"
            )
        try:
            os.replace(extracted, target)  # atomic: the data dir appears whole or not at all
        except OSError as e:
            if not _is_complete(target):  # a concurrent run finishing first is fine
                raise DownloadError(f"could not move the extracted data to {target}: {e}") from e
    finally:
        archive.unlink(missing_ok=True)
        shutil.rmtree(extract_dir, ignore_errors=True)
    say(f"bAbI ready at {target}")
    return target


def _is_complete(target: Path) -> bool:
    """A directory (or a user's symlink to one) holding a variant folder (en/, en-10k/, ...)."""
    return target.is_dir() and any(p.is_dir() for p in target.iterdir())


def _remove_partials(dest: Path) -> None:
    """Delete what an interrupted earlier run left behind."""
    for leftover in dest.glob(PARTIAL_PREFIX + "*"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _fetch(url: str, out, progress: bool) -> str:
    """Stream `url` into the open file `out` and return its SHA-256; raise DownloadError if it fails or comes up short."""
    hint = (
        f"download it by hand from {url}, unpack it, and pass the {ARCHIVE_FOLDER}/ folder "
        f"with --data-dir (or $MEMNET_DATA)"
    )
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=expected, unit="B", unit_scale=True, unit_divisor=1024,
                           desc="bAbI", file=sys.stderr)
            received, digest = 0, hashlib.sha256()
            try:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
    except urllib.error.HTTPError as e:
        raise DownloadError(f"could not download {url}: HTTP {e.code} {e.reason}; {hint}") from e
    except urllib.error.URLError as e:
        raise DownloadError(f"could not download {url}: {e.reason}; {hint}") from e
    except (OSError, HTTPException) as e:  # resets, timeouts, disk full while writing
        raise DownloadError(f"could not download {url}: {e!r}; {hint}") from e
    # http.client does not raise when a connection closes before Content-Length bytes arrive
    # (see HTTPResponse.readinto), so check the count here.
    if expected is not None and received != expected:
        raise DownloadError(
            f"could not download {url}: got {received} of {expected} bytes (connection closed "
            f"early); try again, or {hint}"
        )
    return digest.hexdigest()


def _extract_checked(archive: Path, into: Path, url: str) -> None:
    """Check every member, then extract. Regular files and directories inside `into` only.

    The checks are ours, not tarfile's `filter=`, whose behaviour differs across Python
    3.10-3.13 (and is missing on older patch releases); `filter="data"` is added where present
    as a second guard.
    """
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()  # reads the whole stream: truncation shows up here
            root = into.resolve()
            for member in members:
                _check_member(member, root)
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(into, members=members, **extra)
    except DownloadError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DownloadError(
            f"archive from {url} is corrupt or not a .tar.gz ({e!r}); run the download "
            f"again, or unpack a manual download and pass its {ARCHIVE_FOLDER}/ with --data-dir"
        ) from e


def _check_member(member: tarfile.TarInfo, root: Path) -> None:
    """Raise DownloadError unless `member` is a plain file or folder that stays under `root`."""
    name = member.name
    if not (member.isreg() or member.isdir()):
        kind = ("symlink" if member.issym() else "hard link" if member.islnk()
                else "device file" if member.isdev() else "FIFO" if member.isfifo()
                else f"type {member.type!r}")
        raise DownloadError(f"refusing to extract archive member {name!r}: it is a {kind}")
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute() \
            or PureWindowsPath(name).drive or PureWindowsPath(name).is_absolute():
        raise DownloadError(f"refusing to extract archive member {name!r}: absolute path")
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise DownloadError(f"refusing to extract archive member {name!r}: path contains '..'")
    # Belt and braces: the lexical checks above already keep paths inside; no symlink can exist
    # under `root` because none is ever extracted.
    resolved = (root / name).resolve()
    if resolved != root and root not in resolved.parents:
        raise DownloadError(f"refusing to extract archive member {name!r}: escapes {root}")


def _preview(names: list[str], limit: int = 10) -> str:
    """`a, b, c` or `a, b, ... (25 entries)`; `nothing` when empty."""
    if not names:
        return "nothing"
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names)} entries)"
