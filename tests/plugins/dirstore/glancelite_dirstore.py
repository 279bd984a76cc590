"""A third-party glancelite store driver: each image a file ``<dirstore_root>/<image id>``.

Everything glancelite needs from it is on the class: its type, schemes,
capabilities and the oslo options of its store group (declared once, here).
"""

from __future__ import annotations

import os
import urllib.parse

from oslo_config import cfg

from glancelite import errors
from glancelite.store import base
from glancelite.store.capabilities import Capability


class DirStoreDriver(base.Driver):
    TYPE = "dirstore"
    SCHEMES = ("dirstore",)
    STATIC_CAPABILITIES = Capability.RW_ACCESS | Capability.DRIVER_REUSABLE
    OPTIONS = [
        cfg.StrOpt("dirstore_root", help="Directory holding the images (dirstore plugin)."),
        cfg.IntOpt("dirstore_chunk_size", default=65536, min=1, help="Bytes per read and write (dirstore plugin)."),
    ]

    def __init__(self, store):
        super().__init__(store)
        self.root = self.option("dirstore_root")
        if not self.root:
            raise errors.ConfigError(store.id, "dirstore_root", "is required by the dirstore store")
        os.makedirs(self.root, exist_ok=True)
        self.chunk_size = self.option("dirstore_chunk_size")

    def _path(self, url: str) -> str:
        split = urllib.parse.urlsplit(url)
        if split.scheme != "dirstore" or split.netloc != self.store.id:
            raise base.BadStoreUri(f"{url} is not a location of store {self.store.id}")
        return os.path.join(self.root, os.path.basename(split.path))

    def owns(self, url: str) -> bool:
        return urllib.parse.urlsplit(url).netloc == self.store.id

    def properties(self):
        return {"root": self.root, "chunk_size": self.chunk_size}

    def add(self, image_id, reader, size):
        path = os.path.join(self.root, image_id)
        if os.path.exists(path):
            raise base.Duplicate(f"Image {image_id} already exists in store {self.store.id}.")
        written = 0
        with base.removing_on_failure(lambda: os.unlink(path)), open(path, "xb") as fh:
            for chunk in base.read_chunks(reader, self.chunk_size):
                fh.write(chunk)
                written += len(chunk)
        return base.StoredObject(url=f"dirstore://{self.store.id}/{image_id}", size=written)

    def get(self, url, offset=0, length=None):
        path = self._path(url)
        try:
            fh = open(path, "rb")
        except FileNotFoundError:
            raise base.StoreNotFound(f"{url} not found") from None
        size = os.fstat(fh.fileno()).st_size

        def chunks():
            with fh:
                while chunk := fh.read(self.chunk_size):
                    yield chunk

        return base.DataStream(chunks(), size=size, length=size, on_close=fh.close)

    def get_size(self, url):
        try:
            return os.path.getsize(self._path(url))
        except FileNotFoundError:
            raise base.StoreNotFound(f"{url} not found") from None

    def delete(self, url):
        try:
            os.unlink(self._path(url))
        except FileNotFoundError:
            raise base.StoreNotFound(f"{url} not found") from None
