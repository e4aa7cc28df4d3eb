"""A TCP forwarder whose ``cut()`` is a network outage: live connections drop, new ones are refused.

Tests put it between a client and the real Postgres to see what the service does when the database
goes away and comes back, without mocking the database. With ``drop_responses`` it loses the first
answers instead: a request goes through, and its connection drops the moment the answer comes back
(what a client sees when the network fails after the server did the work).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, drop_responses: int = 0) -> None:
        self._target = (target_host, target_port)
        self._responses_to_drop = drop_responses
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._lock = threading.Lock()
        self._live: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="tcp-proxy").start()

    def cut(self) -> None:
        """Drop every connection and refuse new ones until ``restore()``."""
        self._up.clear()
        with self._lock:
            live, self._live = self._live, []
        for sock in live:
            _drop(sock)

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                _drop(client)
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                _drop(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._live += [client, upstream]
                lose_answer = self._responses_to_drop > 0
                self._responses_to_drop -= 1
            threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client, lose_answer), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket, drop_first_chunk: bool = False) -> None:
    try:
        while chunk := source.recv(65536):
            if drop_first_chunk:
                break  # the answer is lost: both sides are dropped below
            sink.sendall(chunk)
    except OSError:
        pass
    _drop(source)
    _drop(sink)


def _drop(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
