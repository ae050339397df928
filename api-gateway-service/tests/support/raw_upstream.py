"""A bare HTTP/1.1 upstream for what uvicorn cannot be made to do.

By the last segment of the request path:

- ``warm``: a 200 answer; the connection is kept alive;
- ``stale``: the same 200 answer, keep-alive and without ``Connection: close``; then, as soon as the
  next request arrives on that connection, the connection is closed with that request unread (the
  kernel resets it). That is a service closing an idle kept-alive connection (uvicorn after its
  keep-alive timeout, at shutdown, or after an unhandled error) at the very moment nginx reuses
  it: the service never saw the request;
- ``sse``: server-sent events delimited by closing the connection (no chunked encoding, as an
  HTTP/1.0-style server streams): one event, then, once the test releases the query's ``stream``,
  the last event and the close. nginx holds such a body in its buffers unless buffering is off,
  whereas uvicorn's chunked streams would slip through a buffering proxy anyway;
- anything else: the request is read in full and the connection closed without an answer, which
  nginx reports as "upstream prematurely closed connection", an `error` for proxy_next_upstream.

The server counts connections, requests per path and the requests it left unread on a stale
connection, so a test can tell whether nginx reused a keep-alive connection and whether it sent a
request a second time.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections import Counter
from types import TracebackType
from typing import Self

__all__ = ["RawUpstream"]

_WARM_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 2\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n"
    b"{}"
)
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Connection: close\r\n"
    b"\r\n"
)


class RawUpstream:
    """A threaded server on 127.0.0.1 and a free port; use it as a context manager."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._hits: Counter[str] = Counter()
        self._connections = 0
        self._unread = 0
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()
        self._closing = threading.Event()
        self._releases: dict[str, threading.Event] = {}

    @property
    def address(self) -> str:
        """host:port for an upstream setting."""
        return f"127.0.0.1:{self.port}"

    def hits(self, path: str) -> int:
        """How many requests for ``path`` arrived."""
        with self._lock:
            return self._hits[path]

    def release(self, stream: str) -> None:
        """Let the ``sse`` answer waiting on ``stream`` send its last event."""
        self._release_event(stream).set()

    def _release_event(self, stream: str) -> threading.Event:
        with self._lock:
            return self._releases.setdefault(stream, threading.Event())

    @property
    def unread(self) -> int:
        """How many requests arrived on a ``stale`` connection and were dropped unread."""
        with self._lock:
            return self._unread

    @property
    def connections(self) -> int:
        """How many connections were accepted."""
        with self._lock:
            return self._connections

    def __enter__(self) -> Self:
        accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        accept_thread.start()
        self._threads.append(accept_thread)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closing.set()
        # shutdown() wakes the thread blocked in accept(); close() alone would not.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            still_open = list(self._open)
            waiting = list(self._releases.values())
        for event in waiting:
            event.set()
        for connection in still_open:
            # Wakes the thread blocked in recv() on a connection nginx keeps alive.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections += 1
                self._open.add(connection)
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(10)
        buffered = b""
        with connection:
            try:
                while True:
                    request, buffered = _read_request(connection, buffered)
                    if request is None:
                        return
                    target = request.split(b" ", 2)[1].decode("latin-1")
                    path, _, query = target.partition("?")
                    with self._lock:
                        self._hits[path] += 1
                    leaf = path.rsplit("/", 1)[-1]
                    if leaf == "sse":
                        self._stream(connection, query.removeprefix("stream="))
                        return
                    if leaf not in {"warm", "stale"}:
                        return
                    connection.sendall(_WARM_RESPONSE)
                    if leaf == "stale":
                        self._close_when_reused(connection)
                        return
            except OSError:
                return
            finally:
                with self._lock:
                    self._open.discard(connection)

    def _close_when_reused(self, connection: socket.socket) -> None:
        readable, _, _ = select.select([connection], [], [], 30)
        if readable and connection.recv(1, socket.MSG_PEEK):
            with self._lock:
                self._unread += 1
        # Closing with unread bytes makes the kernel answer with a reset, as it does for uvicorn.

    def _stream(self, connection: socket.socket, stream: str) -> None:
        connection.sendall(_SSE_HEAD + b'data: {"delta": "first"}\n\n')
        self._release_event(stream).wait(timeout=30)
        connection.sendall(b"event: done\ndata: {}\n\n")


def _read_request(connection: socket.socket, buffered: bytes) -> tuple[bytes | None, bytes]:
    """Read one request (head and Content-Length body); return its head and what follows it."""
    while b"\r\n\r\n" not in buffered:
        chunk = connection.recv(65536)
        if not chunk:
            return None, b""
        buffered += chunk
    head, _, rest = buffered.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return None, b""
        rest += chunk
    return head, rest[length:]
