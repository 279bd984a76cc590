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

A chunked body (python-glanceclient sends 64 KiB chunks) is decoded here the same way
by ``ChunkedSocketBody``: one ``recv`` for each chunk's data instead of gunicorn's
generator and BytesIO copies. It takes gunicorn's place as the decoder of that body: gunicorn's
``ChunkedReader`` is given a parser that reads through it, so whoever reads the rest of the
body through ``wsgi.input`` stays in step, and bytes received past the body's end go back to
gunicorn. It is as strict as gunicorn: hex sizes only, a CRLF after every chunk, no bare CR
or LF, size lines and trailers bounded by gunicorn's limits; a malformed body is a 400.
"""

from __future__ import annotations

import contextlib
import inspect

from glancelite import errors
from glancelite.api import common
from glancelite.api.paced_body import PacedBody

# Bytes of a chunk-size line or trailer section taken from the socket at a time.
LINE_RECV_BYTES = 8192
# What gunicorn's reader is fed per step when something reads the body through wsgi.input.
PARSER_STEP_BYTES = 1 << 18


@contextlib.contextmanager
def image_body(req, client_socket_timeout: int):
    """The image data of an upload or a stage (PUT /file, PUT /stage), for the ingest path.

    Read at its client's pace (PacedBody) from ``upload_body``; reads fail after
    ``client_socket_timeout`` seconds of client silence. On any failure what the client
    is still sending is drained, bounded, before the error goes on: answering before the
    body is consumed makes many clients see a reset instead of our answer (413, 409, ...).
    """
    with common.body_read_timeout(req, client_socket_timeout):
        try:
            yield PacedBody(upload_body(req.env))
        except BaseException:
            common.drain(req.stream, limit=common.UPLOAD_DRAIN_LIMIT, seconds=common.UPLOAD_DRAIN_SECONDS)
            raise


def upload_body(env: dict):
    """What to read the request body from: a ``SocketBody`` when that is safe, else ``wsgi.input``."""
    stream = env["wsgi.input"]
    sock = env.get("gunicorn.socket")
    return SocketBody.over(stream, sock) or ChunkedSocketBody.over(stream, sock) or stream


def _whole(piece, size: int | None) -> bytes:
    """``piece(n)`` (at most n bytes, b"" at the end) called until ``size`` bytes or the end."""
    if size is None or size < 0:
        size = PARSER_STEP_BYTES
    if size == 0:
        return b""
    data = piece(size)
    if len(data) == size or not data:
        return data
    pieces, got = [data], len(data)
    while got < size and (data := piece(size - got)):
        pieces.append(data)
        got += len(data)
    return b"".join(pieces)


def _no_more_data(cause: Exception) -> Exception:
    try:
        from gunicorn.http.errors import NoMoreData
    except ImportError:  # only gunicorn's own reader calls the parser
        return cause
    return NoMoreData(str(cause).encode())


def _gunicorn_body(stream, sock, reader_type: str):
    """(reader, unreader) of gunicorn's untouched ``stream`` whose reader is ``reader_type`` on ``sock``, or None."""
    if sock is None:
        return None
    try:
        from gunicorn.http import body as gunicorn_body
    except ImportError:  # not served by gunicorn
        return None
    if type(stream) is not gunicorn_body.Body or type(stream.reader) is not getattr(gunicorn_body, reader_type):
        return None
    reader = stream.reader
    unreader = getattr(reader, "unreader", None)
    if unreader is None and inspect.isgenerator(getattr(reader, "parser", None)):
        # ChunkedReader keeps its unreader only as the argument of its (not yet started) parser.
        frame = reader.parser.gi_frame
        unreader = frame.f_locals.get("unreader") if frame is not None else None
    if (
        stream.buf.tell() != 0  # the application read from wsgi.input already
        or getattr(unreader, "sock", None) is not sock
        or not callable(getattr(unreader, "take_buffered", None))
        or not callable(getattr(unreader, "unread", None))
    ):
        return None
    return reader, unreader


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
        found = _gunicorn_body(stream, sock, "LengthReader")
        if found is None or not isinstance(getattr(found[0], "length", None), int):
            return None
        return cls(found[0], found[1], sock)

    def read(self, size: int = -1, /) -> bytes:
        """Blocks until ``size`` bytes (or the rest of the body) came: the upload then moves whole
        blocks (a recv gives what the socket holds, often far less), each with one write and one
        hash batch; every piece handed on costs a fixed overhead in the layers above."""
        return _whole(self._piece, size)

    def _piece(self, size: int) -> bytes:
        remaining = self._length_reader.length
        if remaining <= 0:
            return b""
        if size > remaining:
            size = remaining
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


class ChunkedSocketBody:
    """``read(n)``: at most n bytes of a chunked body's data, b"" after its last chunk and trailers."""

    def __init__(self, chunked_reader, unreader, sock):
        self._unreader = unreader
        self._sock = sock
        self._held = unreader.take_buffered()  # received, not yet decoded
        self._left = 0  # data bytes still to come in the current chunk
        self._state = "size"  # size -> data -> crlf -> size ... -> done
        self._line_limit = getattr(chunked_reader, "limit_chunk_size_line", 0) or 8190
        self._trailer_limit = getattr(chunked_reader, "limit_trailer_section", 0) or 8190 * 32
        self._failure: Exception | None = None
        chunked_reader.parser = self._as_parser()

    @classmethod
    def over(cls, stream, sock) -> ChunkedSocketBody | None:
        found = _gunicorn_body(stream, sock, "ChunkedReader")
        if found is None:
            return None
        reader, unreader = found
        parser = getattr(reader, "parser", None)
        buf = getattr(reader, "buf", None)
        if (
            not inspect.isgenerator(parser)
            or inspect.getgeneratorstate(parser) != inspect.GEN_CREATED  # gunicorn started decoding
            or buf is None
            or buf.tell() != 0
        ):
            return None
        return cls(reader, unreader, sock)

    def _as_parser(self):
        """What gunicorn's ChunkedReader reads from now on: this decoder, so both stay in step."""
        try:
            while data := self.read(PARSER_STEP_BYTES):
                yield data
        except (errors.Invalid, OSError) as exc:
            # gunicorn reads here to drain the body before reusing the connection: its
            # NoMoreData ends the connection quietly, anything else it logs as a request error.
            raise _no_more_data(exc) from exc

    def read(self, size: int = -1, /) -> bytes:
        """Blocks until ``size`` data bytes (or the body's end) came, across chunks: see SocketBody.read."""
        return _whole(self._piece, size)

    def _piece(self, size: int) -> bytes:
        if self._failure is not None:
            raise self._failure  # the framing is lost: nobody may read on (gunicorn then drops the connection)
        try:
            while True:
                if self._state == "data":
                    return self._data(size)
                if self._state == "done":
                    return b""
                if self._state == "crlf":
                    if self._line(self._line_limit) != b"":
                        raise errors.Invalid("Invalid chunked encoding: a chunk is longer than its size.")
                    self._state = "size"
                self._size_line()
        except (errors.Invalid, OSError) as exc:
            self._failure = exc
            raise

    def _data(self, size: int) -> bytes:
        want = min(size, self._left)
        if self._held:
            data, self._held = self._held[:want], self._held[want:]
        else:
            data = self._sock.recv(want)
            if not data:
                raise ConnectionResetError("the client closed the connection in the middle of a chunk")
        self._left -= len(data)
        if self._left == 0:
            self._state = "crlf"
        return data

    def _size_line(self) -> None:
        line = self._line(self._line_limit)
        digits, semicolon, extension = line.partition(b";")
        if semicolon:  # RFC 9112: whitespace only before an extension
            digits = digits.rstrip(b" \t")
        if not digits or len(digits) > 16 or digits.strip(b"0123456789abcdefABCDEF"):
            raise errors.Invalid("Invalid chunked encoding: bad chunk size.")
        if b"\r" in extension:
            raise errors.Invalid("Invalid chunked encoding: bad chunk extension.")
        self._left = int(digits, 16)
        if self._left:
            self._state = "data"
            return
        # The last chunk: trailer lines (ignored, as gunicorn would only keep them) up to an empty line.
        taken = 0
        while (trailer := self._line(self._trailer_limit - taken)) != b"":
            taken += len(trailer) + 2
        self._state = "done"
        if self._held:  # what the client sent after this body (a pipelined request) is gunicorn's
            self._unreader.unread(self._held)
            self._held = b""

    def _line(self, limit: int) -> bytes:
        """The next CRLF-terminated line without its CRLF; a bare CR or LF in it, or more than ``limit`` bytes, is a 400."""
        searched = 0
        while (end := self._held.find(b"\r\n", searched)) < 0:
            if len(self._held) > limit:
                raise errors.Invalid("Invalid chunked encoding: line too long.")
            searched = max(0, len(self._held) - 1)
            data = self._sock.recv(LINE_RECV_BYTES)
            if not data:
                raise ConnectionResetError("the client closed the connection in a chunk header")
            self._held += data
        if end > limit:
            raise errors.Invalid("Invalid chunked encoding: line too long.")
        line, self._held = self._held[:end], self._held[end + 2 :]
        if b"\r" in line or b"\n" in line:
            raise errors.Invalid("Invalid chunked encoding: bare CR or LF.")
        return line
