"""A real local webhook receiver for the tests: a threading HTTP server on 127.0.0.1 that records
every request and answers as told (a status per request, a redirect, a slow answer)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    port: int
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in turn; then 200
    answer_body: bytes = b"ok"
    redirect_to: str | None = None
    delay_s: float = 0.0

    def next_status(self) -> int:
        return self.statuses.pop(0) if self.statuses else 200

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.requests)} requests arrived, not {count}")
            time.sleep(0.02)
        return self.requests


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            receiver.requests.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            time.sleep(receiver.delay_s)
            with contextlib.suppress(OSError):  # the sender gave up (or was killed) meanwhile
                self._answer()

        def _answer(self) -> None:
            if receiver.redirect_to is not None:
                self.send_response(302)
                self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(receiver.next_status())
            self.send_header("Content-Length", str(len(receiver.answer_body)))
            self.end_headers()
            self.wfile.write(receiver.answer_body)

        def log_message(self, *_: object) -> None:
            pass

    return Handler


@contextmanager
def webhook_receiver(port: int = 0) -> Iterator[Receiver]:
    receiver = Receiver(url="", port=port)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(receiver))
    server.daemon_threads = True
    server.block_on_close = False  # a slow answer still sleeping does not hold up the test's end
    receiver.port = server.server_address[1]
    receiver.url = f"http://127.0.0.1:{receiver.port}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
