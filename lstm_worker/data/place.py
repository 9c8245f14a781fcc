"""Where outputs live: a local directory or an object-store prefix (``s3://bucket/key``,
or any URI pyarrow opens), behind one small ``pathlib``-like type.

A write is whole or absent: locally through a temporary file renamed over the target,
on a store as one upload (an object appears complete or not at all; a store has no
rename), deleted again if the write failed part way. What a shard has written is
recorded by its metrics part, written last, so nothing depends on renaming a
directory. Credentials come from the environment (the AWS variables, ``~/.aws``, an
instance role), never from the spec; an S3-compatible store's endpoint from
``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

_ENDPOINT = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


@cache
def _s3(endpoint: str | None, region: str | None, key_id: str | None) -> pafs.S3FileSystem:
    """One client per endpoint, region and access key (``key_id``: only the cache's key;
    pyarrow reads the credentials themselves from the environment)."""
    options: dict[str, Any] = {"region": region or "us-east-1"}
    if endpoint:
        parsed = urlparse(endpoint)
        options.update(endpoint_override=parsed.netloc or endpoint, scheme=parsed.scheme or "https")
    retry = pafs.AwsStandardS3RetryStrategy(max_attempts=3)
    return pafs.S3FileSystem(**options, retry_strategy=retry, connect_timeout=5, request_timeout=30)


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The file system ``uri`` lies on and its path there; a plain path is local."""
    if uri.startswith("s3://"):
        endpoint = next((os.environ[k] for k in _ENDPOINT if os.environ.get(k)), None)
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        key_id = os.environ.get("AWS_ACCESS_KEY_ID")
        return _s3(endpoint, region, key_id), uri.removeprefix("s3://").rstrip("/")
    if "://" in uri:
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, str(path)
    return pafs.LocalFileSystem(), str(Path(uri).absolute())


def why(error: OSError) -> str:
    """One line of an OS or store error: its reason, without the path it names twice."""
    return error.strerror or str(error).splitlines()[0]


def is_remote(uri: str) -> bool:
    return "://" in str(uri) and not str(uri).startswith("file://")


class Place:
    """A file or directory, local or on a store; ``str()`` is its URI (or local path)."""

    def __init__(self, uri: str | Path | Place):
        text = str(uri)
        self.uri = text.rstrip("/") if is_remote(text) else str(Path(text).absolute())

    @property
    def fs(self) -> pafs.FileSystem:
        return filesystem(self.uri)[0]

    @property
    def path(self) -> str:
        """Its path on ``fs`` (what a pyarrow call with ``filesystem=`` takes)."""
        return filesystem(self.uri)[1]

    @property
    def local(self) -> bool:
        return not is_remote(self.uri)

    def __truediv__(self, name: str) -> Place:
        return Place(f"{self.uri}/{name}")

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"Place({self.uri!r})"

    def __eq__(self, other: object) -> bool:  # a local Place equals the Path it names
        if isinstance(other, (str, os.PathLike)) and not isinstance(other, Place):
            other = Place(os.fspath(other))
        return isinstance(other, Place) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    def __fspath__(self) -> str:  # a local Place is a path for open(), pandas, shutil
        if not self.local:
            raise TypeError(f"{self.uri} is on an object store, not a local path")
        return self.uri

    def __reduce__(self) -> tuple[type, tuple[str]]:  # to Ray workers as its URI only
        return Place, (self.uri,)

    @property
    def name(self) -> str:
        return self.uri.rsplit("/", 1)[-1]

    @property
    def parent(self) -> Place:
        return Place(self.uri.rsplit("/", 1)[0])

    def resolve(self) -> Place:
        return Place(str(Path(self.uri).resolve())) if self.local else self

    def _type(self) -> pafs.FileType:
        return self.fs.get_file_info(self.path).type

    def exists(self) -> bool:
        return bool(self._type() != pafs.FileType.NotFound)

    def is_file(self) -> bool:
        return bool(self._type() == pafs.FileType.File)

    def is_dir(self) -> bool:
        return bool(self._type() == pafs.FileType.Directory)

    def mkdir(self) -> None:
        """This directory and its parents; one that exists is fine."""
        self.fs.create_dir(self.path, recursive=True)

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as stream:
            return bytes(stream.read())

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def write_bytes(self, payload: bytes) -> None:
        """Whole or not at all: a renamed temporary file here, one PUT on a store."""
        if not self.local:
            with remote_write(self):
                with self.fs.open_output_stream(self.path) as stream:
                    stream.write(payload)
            return
        Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
        atomic_local(Path(self.uri), lambda temp: Path(temp).write_bytes(payload))

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())

    def unlink(self, missing_ok: bool = True) -> None:
        try:
            self.fs.delete_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def rmtree(self) -> None:
        if self.is_dir():
            self.fs.delete_dir(self.path)

    def glob(self, pattern: str) -> list[Place]:
        """The entries directly in this directory whose names match ``pattern``."""
        selector = pafs.FileSelector(self.path, allow_not_found=True)
        names = [info.base_name for info in self.fs.get_file_info(selector)]
        return [self / n for n in sorted(names) if fnmatch.fnmatchcase(n, pattern)]

    def iterdir(self) -> list[Place]:
        return self.glob("*")


@contextmanager
def remote_write(place: Place) -> Iterator[None]:
    """A store completes an upload when its stream closes, even one cut short by an
    error: delete what a failed write left, so an object is whole or absent."""
    try:
        yield
    except BaseException:
        with suppress(OSError):
            place.unlink()
        raise


def atomic_local(path: Path, write: Any) -> None:
    """Write through a temp file in the same directory, then rename over ``path``."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temp)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_parquet(table: pa.Table, place: Place) -> None:
    """One Parquet file, whole or not at all."""
    if place.local:
        Path(place.uri).parent.mkdir(parents=True, exist_ok=True)
        atomic_local(Path(place.uri), lambda temp: pq.write_table(table, temp))
    else:
        with remote_write(place):
            pq.write_table(table, place.path, filesystem=place.fs)


def read_table(place: Place, **options: Any) -> pa.Table:
    return pq.read_table(place.path, filesystem=place.fs, **options)


def read_series(
    place: Place, id_col: str, ids: list[object], columns: list[str] | None = None
) -> pa.Table:
    """The rows of ``ids`` only, filtered as they are read (row groups of other series,
    sorted by id as every output is, are skipped)."""
    return read_table(place, columns=columns, filters=pc.field(id_col).isin(ids))


def read_schema(place: Place) -> pa.Schema:
    with place.fs.open_input_file(place.path) as file:
        return pq.read_schema(file)
