"""download_babi against archives built here and served from 127.0.0.1; never the internet."""

import gzip
import io
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tasks.download import PARTIAL_PREFIX, DownloadError, download_babi
from tasks.paths import ARCHIVE_FOLDER, cached_babi_dir

# A tiny story in bAbI's format (line id, sentence; question \t answer \t supporting ids).
STORY = (
    "1 Mary moved to the bathroom.\n"
    "2 John went to the hallway.\n"
    "3 Where is Mary? \tbathroom\t1\n"
)
GOOD_FILES = {
    f"{ARCHIVE_FOLDER}/en/qa1_single-supporting-fact_train.txt": STORY,
    f"{ARCHIVE_FOLDER}/en/qa1_single-supporting-fact_test.txt": STORY.replace("Mary", "Sandra"),
    f"{ARCHIVE_FOLDER}/en-10k/qa1_single-supporting-fact_train.txt": STORY * 3,
}


# ---- archives ---------------------------------------------------------------------------

def _file(name: str, text: str) -> tuple[tarfile.TarInfo, bytes]:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name: str, type_: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = linkname
    return info, None


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    return _special(name, tarfile.DIRTYPE)


def make_tgz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    # The hostile names must survive tarfile's writer unchanged, or the test proves nothing.
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
        assert [m.name for m in tar.getmembers()] == [info.name for info, _ in members]
    return raw


def good_members() -> list[tuple[tarfile.TarInfo, bytes | None]]:
    return [_dir(ARCHIVE_FOLDER), _dir(f"{ARCHIVE_FOLDER}/en"), _dir(f"{ARCHIVE_FOLDER}/en-10k")] \
        + [_file(name, text) for name, text in GOOD_FILES.items()]


# ---- local server -----------------------------------------------------------------------

class Server:
    """routes: path -> (body, mode); mode "ok", "short" (Content-Length > bytes sent) or
    "cut" (no Content-Length, connection closed half-way). Unknown paths get 404."""

    def __init__(self):
        self.routes: dict[str, tuple[bytes, str]] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if self.path not in server.routes:
                    self.send_error(404)
                    return
                body, mode = server.routes[self.path]
                self.send_response(200)
                if mode in ("ok", "short"):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body if mode == "ok" else body[: len(body) // 2])
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def serve(self, path: str, body: bytes, mode: str = "ok") -> str:
        self.routes[path] = (body, mode)
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def snapshot(root: Path, skip: Path) -> set[Path]:
    """Every path under root except those under skip."""
    return {p for p in root.rglob("*") if skip not in p.parents and p != skip}


def assert_clean_failure(tmp_path: Path, dest: Path, before: set[Path]) -> None:
    """Nothing written outside dest, and dest holds neither the data dir nor temp files."""
    assert snapshot(tmp_path, dest) == before
    assert not (dest / ARCHIVE_FOLDER).exists()
    assert not dest.exists() or list(dest.iterdir()) == []


# ---- tests ------------------------------------------------------------------------------

def test_good_archive_lands_in_place_and_is_not_fetched_twice(server, tmp_path):
    url = server.serve("/babi.tar.gz", make_tgz(good_members()))
    dest = tmp_path / "babi"
    got = download_babi(url=url, dest=dest, progress=False)
    assert got == dest / ARCHIVE_FOLDER
    for name, text in GOOD_FILES.items():
        assert (dest / name).read_text() == text
    assert sorted(p.name for p in dest.iterdir()) == [ARCHIVE_FOLDER]  # no temp files left
    assert download_babi(url=url, dest=dest, progress=False) == got
    assert server.hits == {"/babi.tar.gz": 1}


def test_default_dest_is_the_cache(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEMNET_CACHE", str(tmp_path / "cache"))
    url = server.serve("/babi.tar.gz", make_tgz(good_members()))
    assert download_babi(url=url) == cached_babi_dir()  # progress on: bar and messages
    assert (cached_babi_dir() / "en" / "qa1_single-supporting-fact_train.txt").read_text() == STORY
    download_babi(url=url)
    assert "not downloading" in capsys.readouterr().err
    assert server.hits == {"/babi.tar.gz": 1}


def test_leftovers_of_a_crashed_run_are_removed(server, tmp_path):
    dest = tmp_path / "babi"
    (dest / f"{PARTIAL_PREFIX}dead/{ARCHIVE_FOLDER}/en").mkdir(parents=True)
    (dest / f"{PARTIAL_PREFIX}dead.tar.gz").write_bytes(b"half an archive")
    url = server.serve("/babi.tar.gz", make_tgz(good_members()))
    download_babi(url=url, dest=dest, progress=False)
    assert sorted(p.name for p in dest.iterdir()) == [ARCHIVE_FOLDER]


def _hostile(tmp_path: Path) -> dict[str, tuple[list, str]]:
    """name -> (extra members appended to a good archive, member the error must name)."""
    outside = tmp_path / "outside"
    top = ARCHIVE_FOLDER
    return {
        "dotdot": ([_file("../evil.txt", "x")], "../evil.txt"),
        "dotdot-nested": ([_file(f"{top}/en/../../../evil.txt", "x")], f"{top}/en/../../../evil.txt"),
        "absolute": ([_file(str(outside / "abs_evil.txt"), "x")], str(outside / "abs_evil.txt")),
        "symlink": ([_special(f"{top}/en/link", tarfile.SYMTYPE, "/etc/passwd")], f"{top}/en/link"),
        "hardlink": ([_special(f"{top}/en/hard", tarfile.LNKTYPE, str(outside / "secret"))],
                     f"{top}/en/hard"),
        "device": ([_special(f"{top}/en/null", tarfile.CHRTYPE)], f"{top}/en/null"),
        "fifo": ([_special(f"{top}/en/pipe", tarfile.FIFOTYPE)], f"{top}/en/pipe"),
        "via-symlinked-dir": ([_special(f"{top}/en/out", tarfile.SYMTYPE, str(outside)),
                               _file(f"{top}/en/out/evil.txt", "x")], f"{top}/en/out"),
    }


@pytest.mark.parametrize("case", ["dotdot", "dotdot-nested", "absolute", "symlink", "hardlink",
                                  "device", "fifo", "via-symlinked-dir"])
def test_hostile_archive_is_refused_and_leaves_nothing(server, tmp_path, case):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("secret")
    extra, member = _hostile(tmp_path)[case]
    url = server.serve("/evil.tar.gz", make_tgz(good_members() + extra))
    dest = tmp_path / "cache" / "babi"
    dest.parent.mkdir()  # so the snapshot below already holds it
    before = snapshot(tmp_path, dest)
    with pytest.raises(DownloadError, match="refusing to extract") as err:
        download_babi(url=url, dest=dest, progress=False)
    assert repr(member) in str(err.value)
    assert_clean_failure(tmp_path, dest, before)
    assert not any("evil" in p.name for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("mode", ["short", "cut"])
def test_truncated_body_fails_then_a_good_download_succeeds(server, tmp_path, mode):
    body = make_tgz(good_members() + [_file(f"{ARCHIVE_FOLDER}/en/pad.txt", STORY * 2000)])
    dest = tmp_path / "babi"
    before = snapshot(tmp_path, dest)
    with pytest.raises(DownloadError) as err:
        download_babi(url=server.serve("/cut.tar.gz", body, mode), dest=dest, progress=False)
    assert ("of %d bytes" % len(body) if mode == "short" else "corrupt") in str(err.value)
    assert_clean_failure(tmp_path, dest, before)
    got = download_babi(url=server.serve("/ok.tar.gz", body), dest=dest, progress=False)
    assert (got / "en" / "qa1_single-supporting-fact_train.txt").read_text() == STORY


@pytest.mark.parametrize("body", [b"<html>not an archive</html>", gzip.compress(b"not a tar" * 100)],
                         ids=["not-gzip", "gzip-not-tar"])
def test_corrupt_archive(server, tmp_path, body):
    dest = tmp_path / "babi"
    before = snapshot(tmp_path, dest)
    with pytest.raises(DownloadError, match="corrupt or not a .tar.gz"):
        download_babi(url=server.serve("/bad.tar.gz", body), dest=dest, progress=False)
    assert_clean_failure(tmp_path, dest, before)


def test_archive_without_top_folder_says_what_it_held(server, tmp_path):
    url = server.serve("/other.tar.gz", make_tgz([_file("babi/en/qa1.txt", STORY),
                                                  _file("README", "hi")]))
    dest = tmp_path / "babi"
    with pytest.raises(DownloadError, match=rf"no {ARCHIVE_FOLDER}/ folder.*README, babi"):
        download_babi(url=url, dest=dest, progress=False)
    assert list(dest.iterdir()) == []


def test_http_404_names_the_url(server, tmp_path):
    url = f"http://127.0.0.1:{server.port}/missing.tar.gz"
    with pytest.raises(DownloadError, match="HTTP 404") as err:
        download_babi(url=url, dest=tmp_path / "babi", progress=False)
    assert url in str(err.value) and "--data-dir" in str(err.value)


def test_unreachable_server_names_the_url(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/babi.tar.gz"
    with pytest.raises(DownloadError, match="could not download") as err:
        download_babi(url=url, dest=tmp_path / "babi", progress=False)
    assert url in str(err.value) and "--data-dir" in str(err.value)
    assert list((tmp_path / "babi").iterdir()) == []


def test_foreign_folder_at_target_is_left_alone(tmp_path):
    dest = tmp_path / "babi"
    (dest / ARCHIVE_FOLDER).mkdir(parents=True)
    (dest / ARCHIVE_FOLDER / "notes.txt").write_text("mine")
    with pytest.raises(DownloadError, match="does not look like"):
        download_babi(url="http://127.0.0.1:9/never-fetched", dest=dest, progress=False)
    assert (dest / ARCHIVE_FOLDER / "notes.txt").read_text() == "mine"
