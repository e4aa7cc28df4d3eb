"""A tiny real HTTP server that answers from a script, for the retry policy's tests: the service
cannot be made to answer 429 or a 503 with a chosen Retry-After on demand, and a real socket keeps
httpx's behaviour (connections, headers, timing) as it is with the service."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    at: float


@dataclass
class Script:
    answers: list[Answer]
    seen: list[Seen] = field(default_factory=list)


def problem(status: int, code: str, **headers: str) -> Answer:
    body = {"type": f"https://batchcam.dev/problems/{code}", "title": code, "status": status, "code": code}
    return Answer(status, {**body, "detail": f"scripted {code}"}, {"X-Request-ID": f"req-{code}", **headers})


@contextmanager
def scripted_server(*answers: Answer) -> Iterator[tuple[str, Script]]:
    """Serves the answers in order (the last one again once they run out); yields (URL, script)."""
    script = Script(list(answers))

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            script.seen.append(Seen(self.command, self.path, dict(self.headers), time.monotonic()))
            answer = script.answers.pop(0) if len(script.answers) > 1 else script.answers[0]
            payload = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            kind = "application/problem+json" if answer.status >= 400 else "application/json"
            for name, value in {"Content-Type": kind, **answer.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()
