"""Locations: a local path or any URI pyarrow's filesystems understand, behind one small interface.

``parse("runs/x")``, ``parse("file:///data/runs/x")``, ``parse("s3://bucket/prefix")``,
``parse("gs://bucket/prefix")`` all give a :class:`Location` that joins, lists, reads and writes.
Writes never leave a half-written object: local files go through :mod:`plray.utils.io` (temporary
name + rename); on object stores a single PUT is atomic (an object is visible whole or not at all).

S3 (and S3-compatible stores) read the usual environment variables:

- ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``: endpoint override (MinIO, Ceph, moto), e.g.
  ``http://127.0.0.1:9000``; ``http://`` endpoints use plain HTTP;
- ``AWS_REGION`` or ``AWS_DEFAULT_REGION``: the region;
- credentials: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (/ ``AWS_SESSION_TOKEN``), else
  the AWS SDK's default chain (``~/.aws``, instance/pod roles).

Google Cloud Storage uses ``GOOGLE_APPLICATION_CREDENTIALS`` (or the default credentials chain).
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from plray.utils.io import atomic_write_text


class StorageError(ValueError):
    """A location that cannot be parsed, reached or read; the message names the URI."""


def is_uri(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` names a scheme (``s3://...``) rather than a local path."""
    return "://" in str(location)


def s3_options(env: dict[str, str] | None = None) -> dict[str, Any]:
    """``pyarrow.fs.S3FileSystem`` keywords from the environment (see the module docstring)."""
    env = dict(os.environ) if env is None else env
    opts: dict[str, Any] = {}
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        scheme, _, rest = endpoint.partition("://")
        if not rest:
            scheme, rest = "https", endpoint
        if scheme not in ("http", "https"):
            raise StorageError(f"AWS_ENDPOINT_URL: expected http(s)://host[:port], got {endpoint!r}")
        opts["endpoint_override"] = rest.rstrip("/")
        opts["scheme"] = scheme
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        opts["region"] = region
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        opts["access_key"] = env["AWS_ACCESS_KEY_ID"]
        opts["secret_key"] = env["AWS_SECRET_ACCESS_KEY"]
        if env.get("AWS_SESSION_TOKEN"):
            opts["session_token"] = env["AWS_SESSION_TOKEN"]
    return opts


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    scheme = uri.partition("://")[0].lower()
    try:
        if scheme in ("s3", "s3a"):
            rest = uri.partition("://")[2].strip("/")
            if not rest:
                raise StorageError(f"{uri}: an s3:// location needs a bucket (s3://bucket/prefix)")
            return pafs.S3FileSystem(**s3_options()), rest
        fs, path = pafs.FileSystem.from_uri(uri)
    except StorageError:
        raise
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise StorageError(f"{uri}: not a location pyarrow can open ({exc})") from exc
    return fs, path


@dataclass(frozen=True)
class Location:
    """A directory or file on a filesystem: ``fs`` with ``path`` inside it, shown as ``uri``."""

    fs: pafs.FileSystem
    path: str
    uri: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    @property
    def local_path(self) -> Path:
        """The local path (only for local locations)."""
        if not self.is_local:
            raise StorageError(f"{self.uri}: not a local path")
        return Path(self.path)

    def __str__(self) -> str:
        return self.uri

    def __truediv__(self, part: str) -> Location:
        return self.join(part)

    def join(self, *parts: str) -> Location:
        """A location below this one (``parts`` are '/'-separated relative names)."""
        for p in parts:
            if p.startswith("/") or ".." in p.split("/"):
                raise StorageError(f"{self.uri}: {p!r} is not a relative name below it")
        path = posixpath.join(self.path, *parts)
        uri = posixpath.join(self.uri, *parts) if not self.is_local else str(Path(self.uri, *parts))
        return Location(self.fs, path, uri)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path.rstrip("/"))

    def _info(self) -> pafs.FileInfo:
        try:
            return self.fs.get_file_info(self.path)
        except OSError as exc:
            raise StorageError(f"{self.uri}: cannot reach it ({exc})") from exc

    def exists(self) -> bool:
        return self._info().type != pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self._info().type == pafs.FileType.File

    def is_dir(self) -> bool:
        return self._info().type == pafs.FileType.Directory

    def mkdir(self) -> None:
        """Create the directory (and parents); object stores need none, but it is harmless there."""
        try:
            self.fs.create_dir(self.path, recursive=True)
        except OSError as exc:
            raise StorageError(f"{self.uri}: cannot create it ({exc})") from exc

    def read_bytes(self) -> bytes:
        try:
            with self.fs.open_input_stream(self.path) as fh:
                return fh.read()
        except FileNotFoundError as exc:
            raise StorageError(f"{self.uri}: no such file") from exc
        except OSError as exc:
            raise StorageError(f"{self.uri}: cannot read it ({exc})") from exc

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")

    def write_bytes(self, data: bytes) -> None:
        """Write atomically: a local temporary file + rename, or one PUT on an object store."""
        if self.is_local:
            import tempfile

            path = Path(self.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return
        try:
            with self.fs.open_output_stream(self.path) as fh:
                fh.write(data)
        except OSError as exc:
            raise StorageError(f"{self.uri}: cannot write it ({exc})") from exc

    def write_text(self, text: str) -> None:
        if self.is_local:
            atomic_write_text(self.path, text)
        else:
            self.write_bytes(text.encode("utf-8"))

    def write_json(self, obj: Any) -> None:
        self.write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")

    def list(self) -> list[str]:
        """Names directly below this directory, sorted ([] if it does not exist)."""
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        except OSError as exc:
            raise StorageError(f"{self.uri}: cannot list it ({exc})") from exc
        return sorted(posixpath.basename(i.path.rstrip("/")) for i in infos)

    def upload_dir(self, local_dir: str | os.PathLike[str], *, skip: Callable[[str], bool] | None = None) -> int:
        """Copy a local directory's files here, file by file (each an atomic PUT); returns how many.

        ``skip(relative name)`` leaves a file out.
        """
        src = Path(local_dir)
        if not src.is_dir():
            raise StorageError(f"{src}: not a directory to upload to {self.uri}")
        names = sorted(f.relative_to(src).as_posix() for f in src.rglob("*") if f.is_file())
        names = [n for n in names if skip is None or not skip(n)]
        for name in names:
            self.join(name).write_bytes((src / name).read_bytes())
        return len(names)

    def download_dir(
        self,
        local_dir: str | os.PathLike[str],
        *,
        skip: Callable[[str], bool] | None = None,
        changed_only: bool = False,
    ) -> Path:
        """Copy this directory's files into ``local_dir`` (created); returns it.

        ``skip(relative name)`` leaves a file out; ``changed_only`` keeps a local file of the same
        size (for copies of finished, unchanging files). Each local file is written whole or not at all.
        """
        self.download_files(local_dir, skip=skip, changed_only=changed_only)
        return Path(local_dir)

    def download_files(
        self,
        local_dir: str | os.PathLike[str],
        *,
        skip: Callable[[str], bool] | None = None,
        changed_only: bool = False,
    ) -> int:
        """:meth:`download_dir`, returning the number of files copied."""
        dst = Path(local_dir)
        dst.mkdir(parents=True, exist_ok=True)
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.path, recursive=True, allow_not_found=True))
        except OSError as exc:
            raise StorageError(f"{self.uri}: cannot list it ({exc})") from exc
        base = self.path.rstrip("/") + "/"
        copied = 0
        for info in infos:
            if info.type != pafs.FileType.File or not info.path.startswith(base):
                continue
            rel = info.path[len(base) :]
            target = dst / rel
            unchanged = changed_only and target.is_file() and target.stat().st_size == info.size
            if unchanged or (skip is not None and skip(rel)):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            data = Location(self.fs, info.path, posixpath.join(self.uri, rel)).read_bytes()
            tmp = target.with_name(f".{target.name}.pull")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            copied += 1
        return copied


def parse(location: str | os.PathLike[str] | Location) -> Location:
    """A :class:`Location` from a local path (made absolute) or a URI; :class:`StorageError` if neither."""
    if isinstance(location, Location):
        return location
    text = os.fspath(location)
    if not isinstance(text, str) or not text.strip():
        raise StorageError(f"location: expected a path or URI, got {location!r}")
    if not is_uri(text):
        path = str(Path(text).expanduser().resolve())
        return Location(pafs.LocalFileSystem(), path, path)
    fs, path = _filesystem(text)
    if isinstance(fs, pafs.LocalFileSystem):
        return Location(fs, path, path)
    return Location(fs, path, text.rstrip("/"))
