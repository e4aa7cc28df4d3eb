"""A lean HTTP/1.1 load generator: N clients on keep-alive connections, each sending one request after
another for a fixed time. The request bytes are built once, so the client spends its CPU on sockets,
not on an HTTP library: on a 2-core machine the load generator shares the cores with what it
measures, and both systems compared pay the same client cost."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    clients: int
    seconds: float
    latencies_s: list[float] = field(default_factory=list)  # completed requests with the expected status
    errors: dict[str, int] = field(default_factory=dict)  # anything else, by status or exception

    @property
    def throughput(self) -> float:
        return len(self.latencies_s) / self.seconds

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def http_request(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def multipart(field_name: str, filename: str, content: bytes, content_type: str) -> tuple[str, bytes]:
    """(Content-Type header, body) of a one-file multipart/form-data upload."""
    boundary = "benchmarkboundary7d2f"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return f"multipart/form-data; boundary={boundary}", head + content + f"\r\n--{boundary}--\r\n".encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def one_client(
    port: int, request: bytes, expect: int, until: float, result: LoadResult, check: bytes | None
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < until:
            started = time.perf_counter()
            writer.write(request)
            status, body = await read_response(reader)
            elapsed = time.perf_counter() - started
            if status == expect and (check is None or check in body):
                result.latencies_s.append(elapsed)
            else:
                key = f"HTTP {status}"
                result.errors[key] = result.errors.get(key, 0) + 1
    except (OSError, asyncio.IncompleteReadError) as error:
        key = type(error).__name__
        result.errors[key] = result.errors.get(key, 0) + 1
    finally:
        writer.close()


def run_load(
    port: int, request: bytes, clients: int, seconds: float, expect: int = 200, check: bytes | None = None
) -> LoadResult:
    """``clients`` connections sending ``request`` back to back for ``seconds``; ``check``: bytes a good
    answer contains (e.g. ``b'"succeeded"'``)."""
    result = LoadResult(clients, seconds)

    async def main() -> None:
        until = time.monotonic() + seconds
        started = time.monotonic()
        await asyncio.gather(
            *(one_client(port, request, expect, until, result, check) for _ in range(clients))
        )
        result.seconds = time.monotonic() - started  # the last requests end after ``until``

    asyncio.run(main())
    return result
