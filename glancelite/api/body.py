"""The body of an upload or stage: gunicorn's wsgi.input, or for a Content-Length body under
gunicorn, the same bytes read straight from the client socket.

gunicorn's ``Body.read`` assembles each read in ``io.BytesIO`` copies: with the upload's
hash threads busy, that costs the reading thread 0.2-0.9 ms of CPU per MiB (64 KiB - 1 MiB
reads), a plain ``recv`` 0.07 ms. ``SocketBody`` reads what gunicorn already buffered after
the headers, then ``recv``s at most what is left of the body, and keeps gunicorn's count of
the remaining bytes in step after every read: whatever happens midway, gunicorn (or
``common.drain``) can go on reading the rest through ``wsgi.input`` and reuse the
connection. Any other body (chunked, not gunicorn, partly read already) is left to the
server's ``wsgi.input``.
"""

from __future__ import annotations


def upload_body(env: dict):
    """What to read the request body from: a ``SocketBody`` when that is safe, else ``wsgi.input``."""
    stream = env["wsgi.input"]
    return SocketBody.over(stream, env.get("gunicorn.socket")) or stream


class SocketBody:
    """``read(n)``: at most n bytes of a Content-Length body, b"" at its end (or when the client closed)."""

    def __init__(self, length_reader, unreader, sock):
        self._length_reader = length_reader  # gunicorn's LengthReader: .length is what is left
        self._unreader = unreader
        self._sock = sock
        self._buffered = True  # gunicorn may hold the first bytes of the body

    @classmethod
    def over(cls, stream, sock) -> SocketBody | None:
        """A SocketBody for gunicorn's ``stream`` if its reader is recognised and untouched, else None."""
        if sock is None:
            return None
        try:
            from gunicorn.http.body import Body, LengthReader
        except ImportError:  # not served by gunicorn
            return None
        if type(stream) is not Body or type(stream.reader) is not LengthReader:
            return None
        reader = stream.reader
        unreader = getattr(reader, "unreader", None)
        if (
            stream.buf.tell() != 0  # the application read from wsgi.input already
            or getattr(unreader, "sock", None) is not sock
            or not callable(getattr(unreader, "take_buffered", None))
            or not callable(getattr(unreader, "unread", None))
            or not isinstance(getattr(reader, "length", None), int)
        ):
            return None
        return cls(reader, unreader, sock)

    def read(self, size: int = -1, /) -> bytes:
        remaining = self._length_reader.length
        if remaining <= 0:
            return b""
        if size is None or size < 0 or size > remaining:
            size = remaining
        if size == 0:
            return b""
        if self._buffered:
            data = self._unreader.take_buffered()
            if data:
                if len(data) > size:
                    self._unreader.unread(data[size:])  # the rest of this body, or a pipelined request
                    data = data[:size]
                self._length_reader.length -= len(data)
                return data
            self._buffered = False
        data = self._sock.recv(size)
        self._length_reader.length -= len(data)
        return data
