"""OTLP/HTTP framing against a real collector over raw sockets: lengths, chunking, gzip, deadlines, smuggling.

Every malformed framing gets an OTLP error answer (never a 500, never a hang), the size cap holds for every
framing, an early answer closes the connection so an unread body is never served as a request, and slow
clients are cut off by a whole-request deadline without costing a thread each. Budget: about 40 s.
"""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.rpc import status_pb2
from harness import CollectorProcess, count_when, query
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

pytestmark = pytest.mark.timeout(60)

CAP = 1024 * 1024  # max_request_bytes of this module's collector
REQUEST_TIMEOUT_S = 3.0
WORKERS = 4
TOKEN = "framing-secret"
AUTH = f"Authorization: Bearer {TOKEN}\r\n"
PB = "Content-Type: application/x-protobuf\r\n"


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    data_dir: Path = tmp_path_factory.mktemp("framing") / "data"
    data_dir.mkdir()
    proc = CollectorProcess(data_dir, extra_args=["--auth-token", TOKEN], env={
        "SPANLAKE_FLUSH_INTERVAL_S": "0.2", "SPANLAKE_WRITERS": "1", "SPANLAKE_MAX_REQUEST_BYTES": str(CAP),
        "SPANLAKE_HTTP_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S), "SPANLAKE_HTTP_WORKERS": str(WORKERS)}).start()
    yield proc
    code = proc.stop()
    assert code == 0, proc.read_log()[-3000:]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def _export(tag: str, n: int = 1) -> bytes:
    """A serialized trace export of ``n`` spans named ``tag-<i>``."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    tid = uuid.uuid4().bytes
    for i in range(n):
        ss.spans.append(trace_pb2.Span(trace_id=tid, span_id=(i + 1).to_bytes(8, "big"), name=f"{tag}-{i}",
                                       start_time_unix_nano=time.time_ns(), end_time_unix_nano=time.time_ns() + 1))
    return req.SerializeToString()


def _post_head(length: str | None = None, extra: str = "", path: str = "/v1/traces", auth: bool = True) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\n{PB}{AUTH if auth else ''}{extra}"
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    return (head + "\r\n").encode()


def _chunked(*chunks: bytes) -> bytes:
    return b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"


def _connect(collector: CollectorProcess, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", collector.http_port), timeout=timeout)


def _until_closed(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection; fails the test if it never does."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"server kept the connection open for {timeout} s; got {data[:200]!r}")
    return data


def _parse(data: bytes) -> list[Reply]:
    """The HTTP/1.1 responses in ``data`` (each framed by Content-Length), 1xx interim answers included."""
    replies = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"incomplete response: {data[:200]!r}"
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers.get("content-length", 0))
        replies.append(Reply(int(lines[0].split()[1]), headers, rest[:length]))
        data = rest[length:]
    return replies


def _exchange(collector: CollectorProcess, *parts: bytes, timeout: float = 10.0) -> list[Reply]:
    """Send ``parts`` on a fresh connection and read until the server closes it."""
    with _connect(collector, timeout) as sock:
        for part in parts:
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered early and stopped reading: what it said is still readable
        return _parse(_until_closed(sock, timeout))


def _one_error(replies: list[Reply], status: int, words: str) -> None:
    """Exactly one answer, the OTLP error: ``status``, a protobuf google.rpc.Status naming the problem, closed."""
    assert [r.status for r in replies] == [status], replies
    reply = replies[0]
    assert reply.headers["content-type"] == "application/x-protobuf"
    assert reply.headers.get("connection") == "close"
    assert words in status_pb2.Status.FromString(reply.body).message.lower()


def _names(collector: CollectorProcess, tag: str) -> set[str]:
    rows = query(collector.data_dir, f"select name from spans where name like '{tag}-%'").to_pylist()
    return {r["name"] for r in rows}


def _landed_then_absent(collector: CollectorProcess, absent_tag: str) -> None:
    """A good request after the bad one lands; by then nothing of the bad one may have."""
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    body = _export(marker)
    replies = _exchange(collector, _post_head(str(len(body)), "Connection: close\r\n") + body)
    assert [r.status for r in replies] == [200]
    assert count_when(collector.data_dir, "spans", 1, f"name like '{marker}-%'") == 1
    assert _names(collector, absent_tag) == set()


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no thread count")


# --- declared lengths ---

@pytest.mark.parametrize("length", ["-1", "abc", "12x", "0x10", "1e3", "+5", ""])
def test_malformed_content_length_is_400_and_reads_nothing_to_eof(collector: CollectorProcess, length: str) -> None:
    """-1 used to mean 'read to EOF' (past the cap); a non-number used to be a 500 with a traceback."""
    tag = f"badlen-{uuid.uuid4().hex[:6]}"
    replies = _exchange(collector, _post_head(length) + _export(tag))  # the socket stays open: no EOF to read to
    _one_error(replies, 400, "content-length")
    assert "Traceback" not in collector.read_log()
    _landed_then_absent(collector, tag)


def test_declared_length_over_the_cap_is_413_before_the_upload(collector: CollectorProcess) -> None:
    for length in (str(CAP + 1), "9" * 19):  # (h11 refuses 21+ digits as malformed: 400)
        replies = _exchange(collector, _post_head(length) + b"x" * 1000)
        _one_error(replies, 413, "exceeds")


def test_body_shorter_than_declared_times_out_with_408(collector: CollectorProcess) -> None:
    start = time.monotonic()
    replies = _exchange(collector, _post_head("1000") + b"x" * 10)
    assert time.monotonic() - start < REQUEST_TIMEOUT_S + 4
    _one_error(replies, 408, "not received")


# --- chunked ---

@pytest.mark.parametrize("size_line", [b"-1", b"zz", b"1 2", b"ffffffffffffffffffffffff"])
def test_malformed_chunk_size_is_400(collector: CollectorProcess, size_line: bytes) -> None:
    tag = f"badchunk-{uuid.uuid4().hex[:6]}"
    replies = _exchange(collector, _post_head(None, "Transfer-Encoding: chunked\r\n") + size_line + b"\r\n"
                        + _export(tag) + b"\r\n0\r\n\r\n")
    _one_error(replies, 400, "chunk")  # 24 hex digits: past what any body could need, refused as malformed
    _landed_then_absent(collector, tag)


def test_chunked_body_over_the_cap_is_413(collector: CollectorProcess) -> None:
    chunk = b"\0" * (256 * 1024)
    replies = _exchange(collector, _post_head(None, "Transfer-Encoding: chunked\r\n"), *[_chunked(chunk)[:-5]] * 6,
                        b"0\r\n\r\n")
    _one_error(replies, 413, "exceeds")


def test_valid_chunked_body_is_accepted(collector: CollectorProcess) -> None:
    tag = f"chunked-{uuid.uuid4().hex[:6]}"
    body = _export(tag, 3)
    replies = _exchange(collector, _post_head(None, "Transfer-Encoding: chunked\r\nConnection: close\r\n")
                        + _chunked(body[:10], body[10:]))
    assert [r.status for r in replies] == [200]
    assert count_when(collector.data_dir, "spans", 3, f"name like '{tag}-%'") == 3


# --- gzip ---

def test_gzip_bomb_over_the_cap_is_413_whatever_the_framing(collector: CollectorProcess) -> None:
    bomb = gzip.compress(b"\0" * (16 * CAP), compresslevel=9)  # 16 MiB inflated, ~16 KiB sent
    gz = "Content-Encoding: gzip\r\nConnection: close\r\n"  # (a body read whole leaves keep-alive possible)
    _one_error(_exchange(collector, _post_head(str(len(bomb)), gz) + bomb), 413, "decompressed")
    _one_error(_exchange(collector, _post_head(None, gz + "Transfer-Encoding: chunked\r\n") + _chunked(bomb)),
               413, "decompressed")
    # Two members just under the cap each: the cap holds over their sum.
    half = gzip.compress(b"\0" * (CAP // 2 + 10))
    _one_error(_exchange(collector, _post_head(str(2 * len(half)), gz) + half + half), 413, "decompressed")


def test_multi_member_gzip_lands_every_member(collector: CollectorProcess) -> None:
    """RFC 1952: a gzip file may be several members; the second one used to be acknowledged, then dropped."""
    tag = f"members-{uuid.uuid4().hex[:6]}"
    first, second = _export(tag, 2), _export(tag, 3)  # one trace each: spans 0-1 and 0-2 of distinct traces
    body = gzip.compress(first) + gzip.compress(second)
    replies = _exchange(collector, _post_head(str(len(body)), "Content-Encoding: gzip\r\nConnection: close\r\n")
                        + body)
    assert [r.status for r in replies] == [200], replies
    assert count_when(collector.data_dir, "spans", 5, f"name like '{tag}-%'") == 5
    rows = query(collector.data_dir, f"select count(distinct trace_id) as n from spans where name like '{tag}-%'")
    assert rows.to_pylist()[0]["n"] == 2


@pytest.mark.parametrize("trailer, words", [(b"garbage", "trailing"), (b"\0\0\0\0", "trailing"),
                                            (b"\x1f", "trailing"), (b"\x1f\x8bjunk", "gzip")])
def test_gzip_with_trailing_garbage_is_400(collector: CollectorProcess, trailer: bytes, words: str) -> None:
    """Garbage after the last member is refused (not ignored, as gzip -d warns and then does)."""
    tag = f"trailing-{uuid.uuid4().hex[:6]}"
    body = gzip.compress(_export(tag)) + trailer
    replies = _exchange(collector, _post_head(str(len(body)), "Content-Encoding: gzip\r\nConnection: close\r\n")
                        + body)
    assert [r.status for r in replies] == [400], replies
    assert words in status_pb2.Status.FromString(replies[0].body).message
    _landed_then_absent(collector, tag)


# --- parser recursion ---

def test_deeply_nested_json_is_400_not_500(collector: CollectorProcess) -> None:
    depth = 100_000
    body = (b'{"resourceSpans": ' + b"[" * depth + b"]" * depth + b"}")
    head = (f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{AUTH}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    replies = _exchange(collector, head + body)
    assert [r.status for r in replies] == [400], replies
    assert replies[0].headers["content-type"] == "application/json"
    assert "nested" in json.loads(replies[0].body)["message"]


# --- early answers close the connection: an unread body is never a request ---

SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("head, status", [
    (_post_head(str(len(SMUGGLED)), auth=False), 401),
    (_post_head(str(len(SMUGGLED))).replace(b"application/x-protobuf", b"text/plain"), 415),
    (_post_head(str(len(SMUGGLED)), "Content-Encoding: br\r\n"), 415),
    (_post_head(str(len(SMUGGLED)), path="/v1/nothing"), 404),
], ids=["401", "415-type", "415-encoding", "404"])
def test_early_answer_does_not_serve_the_body_as_a_request(collector: CollectorProcess, head: bytes,
                                                            status: int) -> None:
    replies = _exchange(collector, head + SMUGGLED)
    assert [r.status for r in replies] == [status], replies  # no second (200) answer for the hidden GET
    assert replies[0].headers.get("connection") == "close"


def test_expect_100_continue_is_refused_before_the_upload(collector: CollectorProcess) -> None:
    """A client that waits for 100 Continue gets the 401 at once, not after uploading."""
    with _connect(collector) as sock:
        sock.sendall(_post_head(str(CAP), "Expect: 100-continue\r\n", auth=False))
        replies = _parse(_until_closed(sock))
    assert [r.status for r in replies] == [401]
    tag = f"expect-{uuid.uuid4().hex[:6]}"
    body = _export(tag)
    with _connect(collector) as sock:
        sock.sendall(_post_head(str(len(body)), "Expect: 100-continue\r\nConnection: close\r\n"))
        interim = sock.recv(100)
        assert interim.startswith(b"HTTP/1.1 100 ")
        sock.sendall(body)
        assert [r.status for r in _parse(_until_closed(sock))] == [200]


# --- keep-alive ---

def test_keep_alive_and_pipelining_still_work_for_good_requests(collector: CollectorProcess) -> None:
    tag = f"keepalive-{uuid.uuid4().hex[:6]}"
    conn = http.client.HTTPConnection("127.0.0.1", collector.http_port, timeout=10)
    ports = set()
    for i in range(3):
        conn.request("POST", "/v1/traces", _export(f"{tag}{i}"), {"Content-Type": "application/x-protobuf",
                                                                 "Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("Connection") != "close"
        resp.read()
        ports.add(conn.sock.getsockname()[1])
    conn.close()
    assert len(ports) == 1, "each request opened a new connection"
    bodies = [_export(f"{tag}p{i}") for i in range(2)]
    pipelined = b"".join(_post_head(str(len(b))) + b for b in bodies)
    with _connect(collector) as sock:
        sock.sendall(pipelined + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        replies = _parse(_until_closed(sock))
    assert [r.status for r in replies] == [200, 200, 200]
    assert json.loads(replies[2].body)["status"] == "ok"
    assert count_when(collector.data_dir, "spans", 5, f"name like '{tag}%'") == 5


# --- slow clients ---

def test_slow_connections_are_cut_off_without_a_thread_each(collector: CollectorProcess) -> None:
    """60 slowloris clients (a header byte every 0.5 s) and 20 idle ones: each is closed within the request
    timeout (the slow ones with 408), the collector's thread count stays bounded, and a normal client is
    served meanwhile."""
    assert collector.proc is not None
    baseline = _threads(collector.proc.pid)
    slow = [_connect(collector) for _ in range(60)]
    idle = [_connect(collector) for _ in range(20)]
    opened = time.monotonic()
    for sock in slow:
        sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    stop = threading.Event()
    closed_at: dict[int, float] = {}
    replies: dict[int, bytes] = {}

    def trickle() -> None:
        while not stop.wait(0.5):
            for i, sock in enumerate(slow):
                if i not in closed_at:
                    try:
                        sock.sendall(b"a")
                    except OSError:
                        closed_at.setdefault(i, time.monotonic())

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        peak = baseline
        served_in = None
        tag = f"meanwhile-{uuid.uuid4().hex[:6]}"
        body = _export(tag)
        while time.monotonic() - opened < 1.5:  # all 80 connections are open and waiting here
            peak = max(peak, _threads(collector.proc.pid))
            if served_in is None:
                start = time.monotonic()
                got = _exchange(collector, _post_head(str(len(body)), "Connection: close\r\n") + body, timeout=5)
                assert [r.status for r in got] == [200]
                served_in = time.monotonic() - start
            time.sleep(0.1)
        assert served_in is not None and served_in < 2.0, served_in
        for i, sock in enumerate(slow):
            replies[i] = _until_closed(sock, timeout=REQUEST_TIMEOUT_S + 6)
            closed_at.setdefault(i, time.monotonic())
            peak = max(peak, _threads(collector.proc.pid))
        for sock in idle:
            assert _until_closed(sock, timeout=REQUEST_TIMEOUT_S + 6) == b""  # idle: closed quietly
    finally:
        stop.set()
        trickler.join(5)
        for sock in slow + idle:
            sock.close()
    assert max(closed_at.values()) - opened < REQUEST_TIMEOUT_S + 4
    assert all(_parse(data)[0].status == 408 for data in replies.values() if data)
    assert sum(1 for data in replies.values() if data) >= len(slow) // 2  # most read their 408 before the close
    assert peak - baseline <= WORKERS + 2, f"threads {baseline} -> {peak}"
    assert count_when(collector.data_dir, "spans", 1, f"name like '{tag}-%'") == 1


def test_connections_over_the_limit_are_closed_at_once(tmp_path: Path) -> None:
    """http_max_connections bounds open sockets: the one over the limit is closed unanswered; once the others
    go, new connections are served again."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    proc = CollectorProcess(data_dir, env={"SPANLAKE_WRITERS": "1", "SPANLAKE_HTTP_MAX_CONNECTIONS": "5"}).start()
    try:
        held = [_connect(proc) for _ in range(5)]
        time.sleep(0.3)  # let the server accept all five
        with _connect(proc) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _until_closed(extra, timeout=5) == b""
        for sock in held:
            sock.close()
        deadline = time.monotonic() + 5
        statuses: list[int] = []
        while time.monotonic() < deadline and statuses != [200]:
            time.sleep(0.1)
            with _connect(proc) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                statuses = [r.status for r in _parse(_until_closed(sock, timeout=5))]
        assert statuses == [200]
    finally:
        assert proc.stop() == 0, proc.read_log()[-3000:]
