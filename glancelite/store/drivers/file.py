"""Filesystem store: images are files named by image id in one of the data directories.

Unlike glance_store, an image is written under a temporary name and linked
to its final name only when complete (optionally fsynced first), so a crash
never leaves a truncated file that looks like an image.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO

from oslo_config import cfg

from glancelite import errors, processes
from glancelite.settings import StoreSettings
from glancelite.store import base
from glancelite.store.capabilities import Capability, without

LOG = logging.getLogger(__name__)

# The options of a file store group (glance_store's names and defaults); this module
# needs no optional SDK, so the declarations live beside the driver.
OPTIONS: list[cfg.Opt] = [
    cfg.StrOpt("filesystem_store_datadir", help="Directory the images are written to."),
    cfg.MultiStrOpt("filesystem_store_datadirs", help="Several directories as 'path:priority'."),
    cfg.StrOpt("filesystem_store_metadata_file", help="JSON file of location metadata."),
    cfg.IntOpt("filesystem_store_file_perm", default=0, help="Octal permissions of image files; 0 keeps the umask."),
    cfg.IntOpt("filesystem_store_chunk_size", default=65536, min=1, help="Read and write chunk in bytes."),
    cfg.BoolOpt("filesystem_thin_provisioning", default=False, help="Skip all-zero chunks (sparse files)."),
    cfg.BoolOpt(
        "filesystem_store_fsync", default=False, help="fsync each image before it becomes visible (glancelite)."
    ),
]

# add() asks its reader for up to this many bytes at a time (or filesystem_store_chunk_size
# when larger): every read and write costs a fixed overhead in Python, and the hashing
# reader hands over what it read from the client without cutting it into chunk_size pieces.
WRITE_READ_BYTES = 1 << 20
# get()'s chunks are at least this large: the hashing reader of an import or copy-image asks
# for blocks of this size (streams.SOURCE_READ_BYTES), which DataStream.read then hands on
# without assembling them from smaller reads; a transfer in flight still holds < 1 MiB.
READ_BYTES = 1 << 18
# Below this much free space a data directory counts as full.
MIN_FREE_BYTES = 1 << 20
PARTIAL_PREFIX = ".partial-"


class FileDriver(base.Driver):
    TYPE = "file"
    SCHEMES = ("file", "filesystem")
    STATIC_CAPABILITIES = Capability.READ_RANDOM | Capability.WRITE_ACCESS | Capability.DRIVER_REUSABLE
    OPTIONS = OPTIONS

    def __init__(self, store: StoreSettings):
        super().__init__(store)
        self.chunk_size = self.option("filesystem_store_chunk_size")
        if self.chunk_size < 1:
            raise errors.ConfigError(store.id, "filesystem_store_chunk_size", "must be at least 1")
        self.fsync = self.option("filesystem_store_fsync")
        self.thin = self.option("filesystem_thin_provisioning")
        self.file_perm = self._file_perm()
        # (priority, realpath), highest priority first.
        self.datadirs = self._datadirs()
        for _, path in self.datadirs:
            self._check_dir(path)
        self.metadata_entries = self._metadata_file()

    def prepare(self) -> None:
        for _, path in self.datadirs:
            self._prepare_dir(path)

    # -- configuration ---------------------------------------------------------------

    def _file_perm(self) -> int:
        raw = self.option("filesystem_store_file_perm")
        if raw <= 0:
            return 0
        try:
            perm = int(str(raw), 8)
        except ValueError:
            raise errors.ConfigError(self.store.id, "filesystem_store_file_perm", f"{raw} is not octal") from None
        if not perm & 0o400:
            raise errors.ConfigError(
                self.store.id, "filesystem_store_file_perm", f"{raw} must give the owner read access"
            )
        return perm

    def _datadirs(self) -> list[tuple[int, str]]:
        single = self.option("filesystem_store_datadir")
        multi = list(self.option("filesystem_store_datadirs") or ())
        if single and multi:
            raise errors.ConfigError(
                self.store.id, "filesystem_store_datadirs", "set filesystem_store_datadir or _datadirs, not both"
            )
        if not single and not multi:
            raise errors.ConfigError(self.store.id, "filesystem_store_datadir", "a file store needs a directory")
        if single:
            return [(0, os.path.realpath(single))]
        found: dict[str, int] = {}
        for entry in multi:
            path, sep, priority = entry.rpartition(":")
            if not sep or not path:
                path, priority = entry, "0"
            try:
                prio = int(priority)
            except ValueError:
                raise errors.ConfigError(
                    self.store.id, "filesystem_store_datadirs", f"priority of {entry!r} is not an integer"
                ) from None
            path = os.path.realpath(path)
            if path in found and found[path] != prio:
                raise errors.ConfigError(
                    self.store.id,
                    "filesystem_store_datadirs",
                    f"{path} is listed with priorities {found[path]} and {prio}",
                )
            found[path] = prio
        return sorted(((p, d) for d, p in found.items()), key=lambda pd: -pd[0])

    def _dir_option(self) -> str:
        return "filesystem_store_datadir" if len(self.datadirs) == 1 else "filesystem_store_datadirs"

    def _check_dir(self, path: str) -> None:
        """``path`` is a directory, or ``prepare`` can create it; nothing is created here."""
        if os.path.exists(path):
            if not os.path.isdir(path):
                raise errors.ConfigError(self.store.id, self._dir_option(), f"{path} is not a directory")
            return
        ancestor = os.path.dirname(path)
        while not os.path.exists(ancestor):
            ancestor = os.path.dirname(ancestor)
        if not os.path.isdir(ancestor):
            reason = os.strerror(errno.ENOTDIR)
        elif not os.access(ancestor, os.W_OK | os.X_OK):
            reason = os.strerror(errno.EACCES)
        else:
            return
        raise errors.ConfigError(self.store.id, self._dir_option(), f"cannot create {path}: {reason}")

    def _prepare_dir(self, path: str) -> None:
        option = self._dir_option()
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise errors.ConfigError(self.store.id, option, f"cannot create {path}: {exc.strerror}") from exc
        if not os.path.isdir(path):
            raise errors.ConfigError(self.store.id, option, f"{path} is not a directory")
        if self.file_perm & 0o077:
            # Others may read the images only if they can traverse the directory.
            with contextlib.suppress(OSError):
                mode = os.stat(path).st_mode
                extra = (0o010 if self.file_perm & 0o070 else 0) | (0o001 if self.file_perm & 0o007 else 0)
                os.chmod(path, mode | extra)

    def _metadata_file(self) -> list[dict[str, str]]:
        path = self.option("filesystem_store_metadata_file")
        if not path:
            return []
        option = "filesystem_store_metadata_file"
        try:
            with open(path) as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise errors.ConfigError(self.store.id, option, f"cannot read JSON from {path}: {exc}") from exc
        entries = data if isinstance(data, list) else [data]
        for entry in entries:
            if not (
                isinstance(entry, dict)
                and isinstance(entry.get("id"), str)
                and isinstance(entry.get("mountpoint"), str)
            ):
                raise errors.ConfigError(self.store.id, option, "entries need string 'id' and 'mountpoint'")
        return entries

    # -- live state ------------------------------------------------------------------

    def _free_bytes(self, path: str) -> int:
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize

    def probe(self) -> base.Probe:
        caps = self.STATIC_CAPABILITIES
        if self.store.read_only:
            return base.Probe(without(caps, Capability.WRITE_ACCESS), "the store is configured read_only")
        writable = [d for _, d in self.datadirs if os.access(d, os.W_OK)]
        if not writable:
            return base.Probe(without(caps, Capability.WRITE_ACCESS), "no data directory is writable")
        try:
            roomy = [d for d in writable if self._free_bytes(d) >= MIN_FREE_BYTES]
        except OSError as exc:
            return base.Probe(Capability.NONE, f"data directory unusable: {exc.strerror}", unreachable=True)
        if not roomy:
            return base.Probe(without(caps, Capability.WRITE_ACCESS), "the data directories are full", full=True)
        return base.Probe(caps)

    def live_capabilities(self) -> Capability:
        return self.probe().capabilities

    def properties(self) -> dict[str, Any]:
        return {
            "data_dir": self.datadirs[0][1],
            "chunk_size": self.chunk_size,
            "thin_provisioning": self.thin,
        }

    # -- paths -----------------------------------------------------------------------

    def path_of(self, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in self.SCHEMES:
            raise base.BadStoreUri(f"Location {url} is not a file store location.")
        path = os.path.realpath(urllib.parse.unquote(parts.netloc + parts.path))
        if not any(os.path.dirname(path) == d for _, d in self.datadirs):
            raise base.StoreNotFound(f"Image file {path} is not in store {self.store.id}.")
        return path

    def owns(self, url: str) -> bool:
        try:
            self.path_of(url)
        except errors.GlanceliteError:
            return False
        return True

    def _choose_dir(self, size: int | None) -> str:
        needed = max(size or 0, MIN_FREE_BYTES)
        for priority in sorted({p for p, _ in self.datadirs}, reverse=True):
            candidates = []
            for prio, path in self.datadirs:
                if prio != priority or not os.access(path, os.W_OK):
                    continue
                with contextlib.suppress(OSError):
                    free = self._free_bytes(path)
                    if free >= needed:
                        candidates.append((free, path))
            if candidates:
                return max(candidates)[1]
        raise base.StoreFull(f"Image storage media is full: no data directory of store {self.store.id} has room.")

    # -- operations ------------------------------------------------------------------

    def add(self, image_id: str, reader: base.Readable, size: int | None) -> base.StoredObject:
        datadir = self._choose_dir(size)
        final = os.path.join(datadir, image_id)
        if os.path.lexists(final):
            raise base.Duplicate(f"Image {image_id} already exists in store {self.store.id}.")
        partial = os.path.join(datadir, _partial_name(image_id))
        written = 0
        try:
            with base.removing_on_failure(lambda: os.unlink(partial)):
                fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
                try:
                    if self.thin:
                        written = _write_thin(fd, reader, self.chunk_size)
                    else:
                        written = _write_all(fd, reader, max(self.chunk_size, WRITE_READ_BYTES))
                    if self.fsync:
                        os.fsync(fd)
                finally:
                    os.close(fd)
                if self.file_perm:
                    os.chmod(partial, self.file_perm)
                try:
                    os.link(partial, final)  # never replaces an existing image, unlike rename
                except FileExistsError:
                    raise base.Duplicate(f"Image {image_id} already exists in store {self.store.id}.") from None
        except OSError as exc:
            raise self._translate(exc, partial) from exc
        os.unlink(partial)
        if self.fsync:
            _fsync_dir(datadir)
        return base.StoredObject(url=f"file://{final}", size=written, metadata=self._location_metadata(final))

    def add_from_file(
        self, image_id: str, reader: base.Readable, size: int | None, file: BinaryIO
    ) -> base.StoredObject:
        """Hard-link the file in when the data directory ``add`` would choose is on its file system.

        An import's staged file and the store usually share one file system: the link spares a second
        write of every byte (and the space). ``reader`` is still read to its end first, so the import
        hashes, inspects and limits the data as ``add`` would; the link names the open file itself
        (link_open_file), so what is linked is what was read, whatever became of its name.
        """
        datadir = self._choose_dir(size)
        if os.fstat(file.fileno()).st_dev != os.stat(datadir).st_dev:
            return self.add(image_id, reader, size)
        final = os.path.join(datadir, image_id)
        if os.path.lexists(final):
            raise base.Duplicate(f"Image {image_id} already exists in store {self.store.id}.")
        read = 0
        while chunk := reader.read(WRITE_READ_BYTES):
            read += len(chunk)
        try:
            if self.fsync:
                os.fsync(file.fileno())
            link_open_file(file, final)
        except FileExistsError:
            raise base.Duplicate(f"Image {image_id} already exists in store {self.store.id}.") from None
        except OSError as exc:
            # No /proc, a file system refusing hard links: copy the file just read (it was whole
            # and complete before it was read; files in a store never change in place).
            LOG.info("store %s: cannot link the data of image %s (%s); copying it", self.store.id, image_id, exc)
            file.seek(0)
            return self.add(image_id, file, read)
        return self._stored(final)

    def locate(self, image_id: str) -> str | None:
        for _, datadir in self.datadirs:
            path = os.path.join(datadir, image_id)
            if os.path.isfile(path):
                return f"file://{path}"
        return None

    def adopt(self, image_id: str, path: str) -> base.StoredObject:
        """Link the finished file in (never replacing, as ``add`` does); another file system: copy through ``add``."""
        if self.locate(image_id) is not None:
            raise base.Duplicate(f"Image {image_id} already exists in store {self.store.id}.")
        final = os.path.join(self.datadirs[0][1], image_id)
        try:
            os.link(path, final)
        except FileExistsError:
            raise base.Duplicate(f"Image {image_id} already exists in store {self.store.id}.") from None
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise self._translate(exc, final) from exc
            return super().adopt(image_id, path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return self._stored(final)

    def replace(self, url: str, image_id: str, path: str) -> base.StoredObject:
        """Rename the finished file over the image's file (atomic); another file system: delete, then copy."""
        final = self.path_of(url)
        try:
            os.replace(path, final)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise self._translate(exc, final) from exc
            return super().replace(url, image_id, path)
        return self._stored(final)

    def _stored(self, path: str) -> base.StoredObject:
        if self.file_perm:
            os.chmod(path, self.file_perm)
        size = os.stat(path).st_size
        if self.fsync:
            _fsync_dir(os.path.dirname(path))
        return base.StoredObject(url=f"file://{path}", size=size, metadata=self._location_metadata(path))

    def _translate(self, exc: OSError, path: str) -> errors.GlanceliteError:
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            return base.StoreFull(f"Image storage media is full: {exc.strerror}")
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return base.StoreWriteDenied(f"Insufficient permissions on image storage media: {exc.strerror}")
        return base.StoreUnavailable(f"Store {self.store.id} failed to write {path}: {exc.strerror}")

    def _location_metadata(self, path: str) -> dict[str, str]:
        for entry in self.metadata_entries:
            if path.startswith(entry["mountpoint"]):
                return dict(entry)
        return {}

    def get(self, url: str, offset: int = 0, length: int | None = None) -> base.DataStream:
        path = self.path_of(url)
        try:
            fh = open(path, "rb")
        except FileNotFoundError:
            raise base.StoreNotFound(f"Image file {path} not found") from None
        except OSError as exc:
            raise base.StoreUnavailable(f"Cannot read {path}: {exc.strerror}") from exc
        size = os.fstat(fh.fileno()).st_size
        offset = min(offset, size)
        remaining = size - offset if length is None else max(0, min(length, size - offset))
        fh.seek(offset)
        # Downloads go out with sendfile (the file below); the chunks are for imports, copies
        # and servers without sendfile: reads of at least READ_BYTES, each one handed on as is.
        return base.DataStream(
            _file_chunks(fh, remaining, max(self.chunk_size, READ_BYTES)),
            size=size,
            length=remaining,
            file=fh,
            on_close=fh.close,
        )

    def get_size(self, url: str) -> int:
        path = self.path_of(url)
        try:
            return os.stat(path).st_size
        except FileNotFoundError:
            raise base.StoreNotFound(f"Image file {path} not found") from None

    def delete(self, url: str) -> None:
        path = self.path_of(url)
        try:
            os.unlink(path)
        except FileNotFoundError:
            raise base.StoreNotFound(f"Image file {path} not found") from None
        except OSError as exc:
            raise errors.Forbidden(f"Cannot delete image file {path}: {exc.strerror}") from exc

    def iter_objects(self, scope: base.ListingScope | None = None) -> Iterator[base.ListedObject]:
        """Every regular file in the data directories (partial files of uploads included)."""
        for _, datadir in self.datadirs:
            try:
                entries = list(os.scandir(datadir))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise base.StoreUnavailable(f"Cannot list {datadir} of store {self.store.id}: {exc.strerror}") from exc
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):  # removed while we looked
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    st = entry.stat(follow_symlinks=False)
                    yield base.ListedObject(
                        key=entry.path, url=f"file://{entry.path}", size=st.st_size, modified=st.st_mtime
                    )

    def object_key(self, url: str) -> str:
        return self.path_of(url)

    def remove_orphaned_partials(self, older_than: float = 24 * 3600) -> int:
        """Delete temp files whose writer is gone: a dead process of this host, or any older than ``older_than``.

        A worker killed mid-upload (SIGKILL, OOM) never runs its cleanup; the next worker to start calls this.
        """
        removed = 0
        horizon = time.time() - older_than
        for _, datadir in self.datadirs:
            with contextlib.suppress(OSError):
                for entry in os.scandir(datadir):
                    if not entry.name.startswith(PARTIAL_PREFIX):
                        continue
                    with contextlib.suppress(OSError):
                        if _writer_is_dead(entry.name) or entry.stat().st_mtime < horizon:
                            os.unlink(entry.path)
                            removed += 1
        return removed


def _partial_name(image_id: str) -> str:
    """``.partial-<image id>.<host>.<pid>.<random>``: who writes it, so orphans can be told from live uploads."""
    return f"{PARTIAL_PREFIX}{image_id}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"


def _writer_is_dead(name: str) -> bool:
    """True only when the writer was a process of this host that no longer runs."""
    writer = name[len(PARTIAL_PREFIX) :].partition(".")[2]  # "<host>.<pid>.<random>"
    host, pid, _ = writer.rsplit(".", 2) if writer.count(".") >= 2 else ("", "", "")
    if not pid.isdigit():
        return False  # a name from before writers were recorded: age decides
    # Another host's writer gives None (cannot tell): age decides there too.
    return processes.owner_alive({"host": host, "pid": int(pid), "start": None}) is False


def link_open_file(file: BinaryIO, path: str) -> None:
    """Hard-link the open ``file`` itself (not whatever its name points to now) at ``path``.

    linkat(AT_SYMLINK_FOLLOW) of its /proc/self/fd entry. CPython calls plain link(), which
    does not follow that entry, unless a directory descriptor is given: hence the one here.
    """
    fd_dir = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.link(str(file.fileno()), path, src_dir_fd=fd_dir, follow_symlinks=True)
    finally:
        os.close(fd_dir)


def _write_all(fd: int, reader: base.Readable, read_size: int) -> int:
    """Everything ``reader`` yields written to ``fd`` with os.write (no buffering layer, no copy); bytes written."""
    written = 0
    write = os.write
    while True:
        chunk = reader.read(read_size)
        if not chunk:
            return written
        done = write(fd, chunk)
        if done < len(chunk):  # a short write (signal, nearly full disk): write the rest
            view = memoryview(chunk)
            while done < len(chunk):
                done += write(fd, view[done:])
        written += len(chunk)


def _write_thin(fd: int, reader: base.Readable, chunk_size: int) -> int:
    """Like _write_all, but chunks of zeros become holes (filesystem_thin_provisioning)."""
    written = 0
    for chunk in base.read_chunks(reader, chunk_size):
        if chunk.strip(b"\0"):
            os.lseek(fd, written, os.SEEK_SET)
            view = memoryview(chunk)
            done = 0
            while done < len(chunk):
                done += os.write(fd, view[done:])
        written += len(chunk)
    os.ftruncate(fd, written)  # a trailing hole needs the length set
    return written


def _file_chunks(fh, remaining: int, chunk_size: int):
    while remaining > 0:
        chunk = fh.read(min(chunk_size, remaining))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
