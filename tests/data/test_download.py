"""download_file against a real HTTP server on 127.0.0.1: no mocks, no internet."""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tocha import __version__
from tocha.data.download import download_file
from tocha.errors import ChecksumError, DownloadError

NAME = "train-images.gz"
CONTENT = b"tocha test payload\n" * 500
PAYLOAD = gzip.compress(CONTENT)
MD5 = hashlib.md5(CONTENT).hexdigest()  # content md5: of the decompressed bytes
FAST = {"timeout": 0.5, "backoff": 0.0}


@dataclass
class Reply:
    """What the server does for one request."""

    status: int = 200
    body: bytes = PAYLOAD
    content_length: int | None = None  # lie about the length to cut the body short
    stall_before: float = 0.0  # sleep before sending anything
    stall_after_headers: float = 0.0  # send headers, then sleep before the body
    content_type: str = "application/octet-stream"


class MirrorServer:
    """A ThreadingHTTPServer whose replies are scripted per path; replies[-1] repeats."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.hits: dict[str, int] = defaultdict(int)
        self.user_agents: list[str] = []
        self.stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                outer.user_agents.append(self.headers.get("User-Agent", ""))
                replies = outer.routes.get(self.path)
                if replies is None:
                    self.send_error(404, "Not Found")
                    return
                reply = replies[min(outer.hits[self.path], len(replies) - 1)]
                outer.hits[self.path] += 1
                # stop.wait returns True at teardown, so a stalled handler never outlives a test.
                if reply.stall_before and outer.stop.wait(reply.stall_before):
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                length = reply.content_length or len(reply.body)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.flush()
                if reply.stall_after_headers and outer.stop.wait(reply.stall_after_headers):
                    return
                self.wfile.write(reply.body)
                self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep pytest output clean

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A client that timed out leaves a broken pipe behind: expected, not worth a traceback.
        self.httpd.handle_error = lambda request, client_address: None
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def serve(self, mirror: str, *replies: Reply) -> str:
        """Script the replies for NAME under `mirror`; return the mirror's base URL."""
        self.routes[f"/{mirror}/{NAME}"] = list(replies) or [Reply()]
        return self.url(mirror)

    def url(self, mirror: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{mirror}/"

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    srv = MirrorServer()
    yield srv
    srv.close()


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "data" / "raw"  # does not exist yet: download_file must create it


def closed_port_url() -> str:
    """A base URL on a port nothing listens on, so the connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone/"


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_success(server: MirrorServer, dest: Path) -> None:
    path = download_file(NAME, [server.serve("a")], dest, MD5, **FAST)
    assert path == dest / NAME
    assert path.read_bytes() == PAYLOAD
    assert leftovers(dest) == [NAME]  # no .part file next to it
    assert server.user_agents == [f"tocha/{__version__}"]


def test_success_without_md5_and_with_progress(
    server: MirrorServer, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tocha.data import progress

    monkeypatch.setattr(progress, "QUIET_SECONDS", -1.0)  # as if slow: a line when seen, one at the end
    lines: list[str] = []
    path = download_file(NAME, [server.serve("a")], dest, None, progress=True, log=lines.append, **FAST)
    assert path.read_bytes() == PAYLOAD
    said = [line for line in lines if line.startswith(f"downloading {NAME}: ")]
    assert len(said) == 2 and said[0].endswith("so far, going on...") and " MB in " in said[1]


def test_bad_checksum_on_only_mirror(server: MirrorServer, dest: Path) -> None:
    other = gzip.compress(b"not the published file")
    url = server.serve("a", Reply(body=other))
    with pytest.raises(ChecksumError) as exc:
        download_file(NAME, [url], dest, MD5, **FAST)
    msg = str(exc.value)
    assert NAME in msg and MD5 in msg and url in msg
    assert hashlib.md5(b"not the published file").hexdigest() in msg
    assert leftovers(dest) == []
    assert server.hits[f"/a/{NAME}"] == 1  # a wrong file is not fetched again from the same mirror


def test_html_instead_of_gz_falls_back(server: MirrorServer, dest: Path) -> None:
    html = Reply(body=b"<html>mirror maintenance</html>", content_type="text/html")
    mirrors = [server.serve("a", html), server.serve("b")]
    path = download_file(NAME, mirrors, dest, MD5, **FAST)
    assert path.read_bytes() == PAYLOAD
    assert leftovers(dest) == [NAME]


@pytest.mark.parametrize(
    "stall", [Reply(stall_before=5.0), Reply(stall_after_headers=5.0)], ids=["before", "mid"]
)
def test_stalled_mirror_times_out_then_next_serves(server: MirrorServer, dest: Path, stall: Reply) -> None:
    lines: list[str] = []
    mirrors = [server.serve("slow", stall), server.serve("b")]
    start = time.monotonic()
    path = download_file(NAME, mirrors, dest, MD5, retries=2, log=lines.append, **FAST)
    elapsed = time.monotonic() - start
    assert path.read_bytes() == PAYLOAD
    assert elapsed < 4.0  # two 0.5 s timeouts, nowhere near the 5 s stall
    assert server.hits[f"/slow/{NAME}"] == 2  # a timeout is worth a retry
    assert len(lines) == 2 and all(mirrors[0] + NAME in line for line in lines)
    assert leftovers(dest) == [NAME]


def test_fallback_after_404_logs_it(server: MirrorServer, dest: Path) -> None:
    lines: list[str] = []
    missing = server.url("missing")  # no route: 404
    path = download_file(NAME, [missing, server.serve("b")], dest, MD5, log=lines.append, **FAST)
    assert path == dest / NAME and path.read_bytes() == PAYLOAD
    assert any(missing + NAME in line and "404" in line for line in lines)
    assert not any(server.url("b") in line for line in lines)


def test_all_mirrors_fail(server: MirrorServer, dest: Path) -> None:
    missing, refused = server.url("missing"), closed_port_url()
    with pytest.raises(DownloadError) as exc:
        download_file(NAME, [missing, refused], dest, MD5, **FAST)
    msg = str(exc.value)
    assert missing + NAME in msg and "404" in msg
    assert refused + NAME in msg
    assert str(dest) in msg and "by hand" in msg
    assert leftovers(dest) == [] and not dest.exists()  # no empty folder left in the cache


def test_short_body_is_rejected(server: MirrorServer, dest: Path) -> None:
    # All the real bytes arrive (the md5 would pass), but fewer than Content-Length promised.
    short = Reply(content_length=len(PAYLOAD) + 100)
    with pytest.raises(DownloadError, match="short body"):
        download_file(NAME, [server.serve("a", short)], dest, MD5, retries=2, **FAST)
    assert leftovers(dest) == []


def test_short_body_falls_to_next_mirror(server: MirrorServer, dest: Path) -> None:
    short = Reply(body=PAYLOAD[:50], content_length=len(PAYLOAD))
    path = download_file(NAME, [server.serve("a", short), server.serve("b")], dest, MD5, **FAST)
    assert path.read_bytes() == PAYLOAD
    assert leftovers(dest) == [NAME]


def test_retry_same_mirror_after_500(server: MirrorServer, dest: Path) -> None:
    lines: list[str] = []
    url = server.serve("a", Reply(status=500, body=b"oops"), Reply())
    path = download_file(NAME, [url], dest, MD5, retries=2, log=lines.append, **FAST)
    assert path.read_bytes() == PAYLOAD
    assert server.hits[f"/a/{NAME}"] == 2
    assert len(lines) == 1 and "500" in lines[0] and "retrying" in lines[0]


def test_500_exhausts_retries(server: MirrorServer, dest: Path) -> None:
    url = server.serve("a", Reply(status=500, body=b"oops"))
    with pytest.raises(DownloadError, match="HTTP 500"):
        download_file(NAME, [url], dest, MD5, retries=3, **FAST)
    assert server.hits[f"/a/{NAME}"] == 3
    assert leftovers(dest) == []


def test_404_is_not_retried(server: MirrorServer, dest: Path) -> None:
    server.routes[f"/a/{NAME}"] = [Reply(status=404, body=b"nope")]
    with pytest.raises(DownloadError):
        download_file(NAME, [server.url("a")], dest, MD5, retries=3, **FAST)
    assert server.hits[f"/a/{NAME}"] == 1
