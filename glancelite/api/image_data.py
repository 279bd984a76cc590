"""PUT/GET /v2/images/{id}/file and DELETE /v2/stores/{store_id}/{image_id}: HTTP only.

Bytes stream straight from the request to the store and from the store to
the response; a file-store download is handed to the server's
wsgi.file_wrapper so gunicorn can use sendfile.
"""

from __future__ import annotations

import re

import falcon

from glancelite import errors
from glancelite.api import common
from glancelite.api.body import image_body
from glancelite.services import Services
from glancelite.services.image_data import ByteRange, Download

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def declared_size(req: falcon.Request) -> int | None:
    """x-openstack-image-size, else Content-Length; None when unknown (chunked)."""
    raw = req.get_header("x-openstack-image-size")
    if raw is not None:
        try:
            size = int(raw)
        except ValueError:
            size = -1
        if size < 0:
            raise errors.Invalid("Invalid or missing image size in request headers.")
        return size
    return req.content_length


def _range_resolver(req: falcon.Request):
    """A function total -> ByteRange for the request's Range (or legacy Content-Range), or None."""
    range_header = req.get_header("Range")
    content_range = req.get_header("Content-Range")
    if range_header is None and content_range is None:
        return None
    if range_header is not None and "," in range_header:
        raise errors.Invalid(
            "Requests with multiple ranges are not supported in Glance. You may make multiple single-range requests instead."
        )

    def unsatisfiable(total: int) -> errors.RangeNotSatisfiable:
        return errors.RangeNotSatisfiable(
            "The requested range is not satisfiable.", headers={"Content-Range": f"bytes */{total}"}
        )

    def resolve(total: int) -> ByteRange:
        if range_header is not None:
            match = _RANGE.match(range_header)
            if not match or (not match[1] and not match[2]):
                raise unsatisfiable(total)
            if not match[1]:  # suffix: the last n bytes
                count = int(match[2])
                if count == 0 or total == 0:
                    raise unsatisfiable(total)
                start, end = max(0, total - count), total - 1
            else:
                start = int(match[1])
                end = int(match[2]) if match[2] else total - 1
                if end < start:
                    raise unsatisfiable(total)
                end = min(end, total - 1)
        else:
            # COMPAT: Glance still honours a Content-Range request header.
            match = _CONTENT_RANGE.match(content_range or "")
            if not match:
                raise unsatisfiable(total)
            start, end = int(match[1]), min(int(match[2]), total - 1)
            if end < start:
                raise unsatisfiable(total)
        if start >= total:
            raise unsatisfiable(total)
        return ByteRange(offset=start, length=end - start + 1, total=total)

    return resolve


class _Chunks:
    """A WSGI body over a DataStream: iterable and closable, deliberately without read()."""

    def __init__(self, stream):
        self._stream = stream

    def __iter__(self):
        return iter(self._stream)

    def close(self) -> None:
        self._stream.close()


class ImageFileResource:
    def __init__(self, services: Services):
        self.data = services.image_data
        self.settings = services.settings

    def on_put(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        common.require_octet_stream(req)
        common.check_uuid(image_id)
        with image_body(req, self.settings.client_socket_timeout) as body:
            self.data.upload(
                common.mutating_context(req),
                image_id,
                body,
                size=declared_size(req),
                store_id=req.get_header("X-Image-Meta-Store"),
            )
        resp.status = falcon.HTTP_204

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        common.check_uuid(image_id)
        common.reject_body(req)
        ctx = common.context(req)
        prefer_raw = req.get_param("prefer")
        prefer = self.data.check_prefer([p.strip() for p in prefer_raw.split(",") if p.strip()]) if prefer_raw else None
        download = self.data.download(ctx, image_id, _range_resolver(req), prefer)
        if download is None:
            resp.status = falcon.HTTP_204
            return
        self._send(resp, download)

    @staticmethod
    def _send(resp: falcon.Response, download: Download) -> None:
        stream = download.stream
        resp.content_type = "application/octet-stream"
        if download.image.checksum:
            resp.set_header("Content-MD5", download.image.checksum)
        if download.byte_range is not None:
            rng = download.byte_range
            resp.status = falcon.HTTP_206
            resp.set_header("Content-Range", f"bytes {rng.offset}-{rng.offset + rng.length - 1}/{rng.total}")
        length = stream.length
        if length is None and download.byte_range is None:
            length = download.image.size  # a remote store that did not send Content-Length
        if length is not None:
            resp.content_length = length
        if stream.file is not None:
            # The file is positioned at the range start; with Content-Length set
            # gunicorn sends exactly that many bytes with sendfile().
            resp.stream = stream.file
        else:
            resp.stream = _Chunks(stream)


class StoreImageResource:
    """DELETE /v2/stores/{store_id}/{image_id}: drop one store's copy of an image."""

    def __init__(self, services: Services):
        self.data = services.image_data

    def on_delete(self, req: falcon.Request, resp: falcon.Response, store_id: str, image_id: str) -> None:
        common.reject_body(req)
        self.data.delete_from_store(common.mutating_context(req), store_id, image_id)
        resp.status = falcon.HTTP_204
