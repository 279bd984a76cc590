"""Image transfers a client drives by hand on a raw socket: started, fed or read a little at a
time, finished or dropped at will (the admission test and benchmarks/trickle.py)."""

from __future__ import annotations

import socket
import urllib.parse

# A downloader's receive buffer: small, so the server's sendfile() stays blocked on a slow
# reader instead of handing a whole image to the kernel at once.
SLOW_READER_RCVBUF = 4096


def _connect(service_url: str, rcvbuf: int | None = None, timeout: float = 30.0) -> tuple[socket.socket, str]:
    url = urllib.parse.urlsplit(service_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        # Before connect(), so the window the server sees is small from the start.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect((url.hostname, url.port))
    return sock, url.netloc


def _head(method: str, path: str, host: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response_head(sock: socket.socket, already: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """(status, lower-cased headers, body bytes read past the head) of the response on ``sock``."""
    data = already
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a response head: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, rest


def read_body(sock: socket.socket, headers: dict[str, str], first: bytes) -> bytes:
    length = int(headers.get("content-length", "0"))
    body = first
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return body


class SlowUpload:
    """PUT ``data`` to ``path`` with Content-Length, a piece at a time (``send``), then ``finish``."""

    def __init__(self, service_url: str, path: str, data: bytes, headers: dict[str, str]):
        self.data = data
        self.sent = 0
        self.sock, host = _connect(service_url)
        self.sock.sendall(
            _head(
                "PUT",
                path,
                host,
                {**headers, "Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
            )
        )

    def send(self, count: int) -> int:
        piece = self.data[self.sent : self.sent + count]
        self.sock.sendall(piece)
        self.sent += len(piece)
        return len(piece)

    @property
    def done_sending(self) -> bool:
        return self.sent >= len(self.data)

    def finish(self) -> int:
        """Send the rest and return the response status."""
        self.send(len(self.data))
        status, headers, first = read_response_head(self.sock)
        self.response_body = read_body(self.sock, headers, first)
        self.close()
        return status

    def close(self) -> None:
        self.sock.close()


class SlowDownload:
    """GET ``path``, then read its body a piece at a time (``read``); ``keep_body`` keeps what was read."""

    def __init__(self, service_url: str, path: str, headers: dict[str, str], *, keep_body: bool = True):
        self.sock, host = _connect(service_url, rcvbuf=SLOW_READER_RCVBUF)
        self.sock.sendall(_head("GET", path, host, headers))
        self.status, self.headers, first = read_response_head(self.sock)
        self.length = int(self.headers.get("content-length", "0"))
        self.keep_body = keep_body
        self.body = first if keep_body else b""
        self.received = len(first)

    def read(self, count: int) -> int:
        """Read up to ``count`` more bytes of the body; 0 once it is all read."""
        if self.received >= self.length:
            return 0
        chunk = self.sock.recv(min(count, self.length - self.received))
        if not chunk:
            raise ConnectionError("download cut short")
        self.received += len(chunk)
        if self.keep_body:
            self.body += chunk
        return len(chunk)

    @property
    def done(self) -> bool:
        return self.received >= self.length

    def finish(self) -> bytes:
        while self.read(65536):
            pass
        self.close()
        return self.body

    def close(self) -> None:
        self.sock.close()
