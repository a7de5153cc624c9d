"""Readers and writers shared by every stage: JSONL (or a ``.json`` array), CSV / TSV, parquet and Hugging Face
datasets.

Reading goes through `load_records`, which maps source fields to ours, validates each row and sends bad
rows to a reject list (source, row number, field, reason) instead of dropping them, so that
``read == kept + rejected`` always holds. Problems with the input as a whole (missing file, unknown
format, a required field that no row has) raise `DataError` with a one-line message naming it. A ``.json``
file is read as JSON lines unless it opens with ``[`` (one array of objects, as many exports are) or is one object
holding a table (pandas' ``to_json`` orients, or ``{"data": [...]}``; said in one line). A ``.csv`` /
``.tsv`` file (gzipped too) is read with its header row naming the columns; every cell is text (an empty cell
is a missing value), quoted cells may span lines, and a row with more or fewer cells than the header is
rejected with the counts.

Writing is atomic (temporary file in the same folder, fsync, rename), so a killed process never leaves
a half-written output; `append_jsonl` is the incremental form used by resumable stages, and
`read_jsonl(..., tolerate_torn_tail=True)` ignores the one torn line a kill can leave at the end.

Offline: before anything is fetched from the hub (a dataset here, a benchmark, a model config), one TCP
connection to the hub's host (3 s at most, once per process: `hub_unreachable`) says whether it can be
reached; if not, loading fails at once with `HubOfflineError` naming what needed the hub, instead of the
hub client's retry loop (about 25 s per file, with its retry lines). The probe is skipped when
``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` is set (the local cache answers, or fails, at once) or a
proxy is configured (a direct connection says nothing then).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Generic, TextIO, TypeVar
from urllib.parse import urlparse

from eval.options import did_you_mean

T = TypeVar("T")
log = logging.getLogger(__name__)
FORMATS = ("jsonl", "csv", "parquet", "hf")
CSV_FIELD_LIMIT = 2**31 - 1  # cells as long as a reasoning chain (the csv module's default stops at 128 KiB)
HUB_PROBE_TIMEOUT_S = 3.0
_TRUE = ("1", "true", "yes", "on")
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
ROW_NUMBER = "#row"  # a field_map source name: the row's 1-based number (ids for files that have none)


class DataError(ValueError):
    """Input that cannot be read at all; the message names the file (and field) at fault."""


class HubOfflineError(DataError):
    """The hub cannot be reached and what was asked for has no local source; ``reason`` says why."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def offline_mode() -> bool:
    """``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` is set: the hub's local cache answers, or nothing does."""
    return any(os.environ.get(v, "").lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


@functools.cache
def hub_unreachable() -> str | None:
    """Why the hub cannot be reached from here, or None (reachable, offline mode set, or behind a proxy)."""
    if offline_mode():
        return None
    if any(os.environ.get(v) for v in _PROXY_VARIABLES):
        return None
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT_S).close()
    except OSError as err:
        return f"{host}:{port} unreachable: {err}"
    return None


def require_hub(source: str, what: str) -> None:
    """Fail at once, in one line, when ``source`` (not a local path) is on a hub that cannot be reached.

    Raises:
        HubOfflineError: Naming ``source``, what needed it and the ways out.
    """
    offline = None if Path(source).exists() else hub_unreachable()
    if offline:
        raise HubOfflineError(
            f"{source}: the hub cannot be reached ({offline}) and {what} is on it; pass a local path or set "
            "HF_HUB_OFFLINE=1 to use a cached copy",
            offline,
        )


class RowError(ValueError):
    """A single row is invalid; ``field`` names the offending field when there is one."""

    def __init__(self, reason: str, field: str | None = None):
        super().__init__(reason)
        self.field = field


@dataclass(frozen=True)
class Reject:
    """A row that was read and not kept, with the reason."""

    source: str
    row: int
    field: str | None
    reason: str
    stage: str = "validate"
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadResult(Generic[T]):
    """Rows read from one source: those kept, those rejected, and the accounting."""

    source: str
    kept: list[T] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    read: int = 0
    checksum: str | None = None

    @property
    def reconciled(self) -> bool:
        return self.read == len(self.kept) + len(self.rejects)

    def counts(self) -> dict[str, int]:
        return {"read": self.read, "kept": len(self.kept), "rejected": len(self.rejects)}


# ----------------------------------------------------------------------------------------------- reading


def detect_format(source: str | os.PathLike[str]) -> str:
    """Guess the format of ``source``: a ``.jsonl``/``.json`` file, a ``.parquet`` file, or a dataset.

    A string that is not an existing path is taken for a hub id (``owner/name``).
    """
    path = Path(source)
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")):
        return "csv"
    if name.endswith(".parquet"):
        return "parquet"
    if path.is_dir() or (not path.exists() and "/" in str(source) and not str(source).startswith((".", "/"))):
        return "hf"
    if not path.exists():
        raise DataError(f"{source}: no such file or directory")
    raise DataError(
        f"{source}: unknown format (expected .jsonl, .json, .csv, .tsv, .parquet, a dataset folder or a hub id)"
    )


def iter_rows(
    source: str | os.PathLike[str], *, fmt: str | None = None, split: str = "train", revision: str | None = None
) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """Yield ``(row_number, row)`` with 1-based row numbers; an unreadable row comes as a `RowError`."""
    fmt = fmt or detect_format(source)
    if fmt not in FORMATS:
        raise DataError(f"{source}: unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if fmt == "jsonl":
        yield from _iter_jsonl(Path(source))
    elif fmt == "csv":
        yield from _iter_csv(Path(source))
    elif fmt == "parquet":
        yield from _iter_parquet(Path(source))
    else:
        yield from _iter_hf(str(source), split=split, revision=revision)


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.name.lower().endswith(".json") and _starts_with(path, "["):
        yield from _iter_json_array(path)
        return
    if path.name.lower().endswith(".json") and _starts_with(path, "{"):
        table = _json_table(path)
        if table is not None:
            yield from table
            return
    opener = _open_gz if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                yield number, RowError(f"invalid JSON: {err.msg} at column {err.colno}")
                continue
            yield (
                number,
                row if isinstance(row, dict) else RowError(f"expected a JSON object, got {type(row).__name__}"),
            )


def _iter_csv(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """A CSV (``,``) or TSV (tab) file with a header row; row numbers count data rows from 1. An empty cell is a
    missing value (None)."""
    import csv

    if not path.is_file():
        raise DataError(f"{path}: no such file")
    csv.field_size_limit(CSV_FIELD_LIMIT)
    delimiter = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    opener = _open_gz if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataError(f"{path}: unreadable header row: {err}") from err
        if len(set(header)) != len(header) or not all(h.strip() for h in header):
            raise DataError(f"{path}: the header row must name every column once, got {header}")
        number = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                number += 1
                yield number, RowError(f"unreadable CSV row: {err}")
                continue
            if not cells:
                continue
            number += 1
            if len(cells) != len(header):
                yield number, RowError(f"{len(cells)} cells where the header names {len(header)} columns")
                continue
            yield number, {name: (cell if cell != "" else None) for name, cell in zip(header, cells, strict=True)}


def _starts_with(path: Path, char: str) -> bool:
    with open(path, encoding="utf-8") as handle:
        head = handle.read(4096).lstrip("\ufeff \t\r\n")
    return head.startswith(char)


def _iter_json_array(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """A ``.json`` file holding one array of objects (a common export); row numbers are 1-based indexes."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: invalid JSON array: {err.msg} at line {err.lineno}") from err
    for number, row in enumerate(rows, start=1):
        yield number, row if isinstance(row, dict) else RowError(f"expected a JSON object, got {type(row).__name__}")


def _json_table(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]] | None:
    """A ``.json`` file holding one object that is a table, as pandas' ``to_json`` writes them (``columns``:
    ``{column: {row: value}}``, the default; ``index``: ``{row: {column: value}}``; ``split``: ``{columns, data}``)
    or a wrapper with one list of objects (``{"data": [...]}``): its rows, announced in one line. None when the
    file is one row, or JSON lines, as before."""
    with open(path, encoding="utf-8-sig") as handle:
        first = handle.readline()
        try:
            whole = json.loads(first)
        except json.JSONDecodeError:  # not a whole object on the first line: one object over many lines
            try:
                whole = json.loads(first + handle.read())
            except json.JSONDecodeError:
                return None  # the JSON lines reader names the row that does not parse
        else:
            if handle.read(4096).strip():
                return None  # JSON lines in a .json file: never read whole into memory
    if not isinstance(whole, dict) or not whole:
        return None
    rows, layout = _table_rows(whole)
    if rows is None:
        return None
    log.warning("%s: one JSON object holding a table (%s); read as %d rows", path, layout, len(rows))
    return (
        (n, row if isinstance(row, dict) else RowError(f"expected a JSON object, got {type(row).__name__}"))
        for n, row in enumerate(rows, start=1)
    )


_WRAPPER_KEYS = frozenset({"data", "rows", "records", "examples", "items", "instances", "train", "test"})


def _table_rows(whole: dict[str, Any]) -> tuple[list[Any] | None, str]:
    values = list(whole.values())
    if set(whole) >= {"columns", "data"} and isinstance(whole["data"], list) and isinstance(whole["columns"], list):
        columns = whole["columns"]
        return [dict(zip(columns, r, strict=False)) if isinstance(r, list) else r for r in whole["data"]], "split"
    lists = [k for k, v in whole.items() if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)]
    if len(lists) == 1 and lists[0] in _WRAPPER_KEYS:  # not a one-row file whose chat is a list of dicts
        return whole[lists[0]], f"the list under {lists[0]!r}"
    if not all(isinstance(v, dict) for v in values):
        return None, ""
    inner = [set(v) for v in values]
    if all(keys == inner[0] for keys in inner) and inner[0] and all(str(k).isdigit() for k in inner[0]):
        order = sorted(inner[0], key=int)  # pandas' default: {column: {"0": value, "1": value, ...}}
        return [
            {column: whole[column][i] for column in whole} for i in order
        ], "pandas columns: column -> row -> value"
    if all(str(k).isdigit() for k in whole):  # {"0": {column: value}, ...}
        return [whole[k] for k in sorted(whole, key=int)], "pandas index: row -> column -> value"
    return None, ""


def _open_gz(path: Path, mode: str, encoding: str, newline: str | None = None) -> Any:
    import gzip

    return gzip.open(path, mode, encoding=encoding, newline=newline)


def _iter_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DataError(f"{path}: no such file")
    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            number += 1
            yield number, row


def _iter_hf(source: str, *, split: str, revision: str | None) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    import datasets  # heavy: imported only when a hub id or dataset folder is read

    path = Path(source)
    if path.is_dir() and any((path / name).exists() for name in ("dataset_info.json", "dataset_dict.json")):
        loaded = datasets.load_from_disk(str(path))
        dataset = loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
    else:
        require_hub(source, "this dataset")
        try:
            dataset = datasets.load_dataset(source, split=split, revision=revision)
        except Exception as err:  # the hub client raises many types; the user needs the source named
            raise DataError(f"{source}: cannot load dataset split {split!r}: {type(err).__name__}: {err}") from err
    for number, row in enumerate(dataset, start=1):
        yield number, dict(row)


def map_fields(row: Mapping[str, Any], field_map: Mapping[str, str] | None) -> dict[str, Any]:
    """Rename source fields to ours: ``field_map`` is ``{our_name: source_name}``; other fields are kept.

    ``#row`` (`ROW_NUMBER`) as a source name is filled with the row number by `iter_records`."""
    if not field_map:
        return dict(row)
    mapped = {k: v for k, v in row.items() if k not in field_map.values()}
    for ours, theirs in field_map.items():
        if theirs in row:
            mapped[ours] = row[theirs]
    return mapped


def missing_field(row: Mapping[str, Any], required: Sequence[str]) -> str | None:
    """The first required field that is absent, null or an empty string, if any."""
    for name in required:
        value = row.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return name
    return None


def load_records(
    source: str | os.PathLike[str],
    build: Callable[[dict[str, Any]], T],
    *,
    field_map: Mapping[str, str] | None = None,
    required: Sequence[str] = (),
    fmt: str | None = None,
    split: str = "train",
    revision: str | None = None,
) -> LoadResult[T]:
    """Read ``source`` and turn every valid row into a record with ``build``.

    Args:
        source: A JSONL or parquet file, a saved dataset folder, or a hub id.
        build: Makes a record from a mapped row; raises `RowError` (or ValueError/TypeError) for a bad row.
        field_map: ``{our_name: source_name}``.
        required: Our field names that must be present and non-empty.
        fmt: Force a format instead of guessing from the name.
        split: Dataset split for hub ids and dataset folders.
        revision: Hub revision (commit, tag or branch).

    Returns:
        A `LoadResult` whose counts reconcile.

    Raises:
        DataError: The source is missing or unreadable, or a required field is in none of its rows.
    """
    result: LoadResult[T] = LoadResult(source=str(source))
    rows = iter_records(source, build, field_map=field_map, required=required, fmt=fmt, split=split, revision=revision)
    for _, record in rows:
        result.read += 1
        (result.rejects if isinstance(record, Reject) else result.kept).append(record)  # type: ignore[arg-type]
    if Path(source).is_file():
        result.checksum = sha256_file(source)
    return result


def iter_records(
    source: str | os.PathLike[str],
    build: Callable[[dict[str, Any]], T],
    *,
    field_map: Mapping[str, str] | None = None,
    required: Sequence[str] = (),
    fmt: str | None = None,
    split: str = "train",
    revision: str | None = None,
) -> Iterator[tuple[int, T | Reject]]:
    """`load_records` one row at a time: ``(row number, record or Reject)`` in source order.

    Streaming readers (curation's sharded ingest) use this so that a pool never sits in memory whole; the
    check that each required field appears in some row runs once the source is exhausted.

    Raises:
        DataError: As `load_records` (the required-field check when the iteration ends).
    """
    seen_fields: set[str] = set()
    columns: set[str] = set()  # the source's own names, before field_map renames them
    read = kept = 0
    for number, raw in iter_rows(source, fmt=fmt, split=split, revision=revision):
        read += 1
        if isinstance(raw, RowError):
            yield number, Reject(str(source), number, raw.field, str(raw))
            continue
        columns.update(k for k, v in raw.items() if v is not None)
        row = map_fields(raw, field_map)
        row.update({ours: number for ours, theirs in (field_map or {}).items() if theirs == ROW_NUMBER})
        seen_fields.update(k for k, v in row.items() if v is not None)
        record = _build_row(str(source), number, row, build, required)
        kept += not isinstance(record, Reject)
        yield number, record
    _check_required_seen(str(source), read, kept, required, seen_fields, field_map, columns)


def _build_row(
    source: str, number: int, row: dict[str, Any], build: Callable[[dict[str, Any]], T], required: Sequence[str]
) -> T | Reject:
    row_id = str(row["id"]) if row.get("id") is not None else None
    absent = missing_field(row, required)
    if absent:
        return Reject(source, number, absent, f"missing required field {absent!r}", id=row_id)
    try:
        return build(row)
    except RowError as err:
        return Reject(source, number, err.field, str(err), id=row_id)
    except (ValueError, TypeError, KeyError) as err:
        return Reject(source, number, None, f"{type(err).__name__}: {err}", id=row_id)


def _check_required_seen(
    source: str,
    read: int,
    kept: int,
    required: Sequence[str],
    seen: set[str],
    field_map: Mapping[str, str] | None,
    columns: set[str],
) -> None:
    """A required field in no row fails, naming the source's own columns and the closest to the one mapped."""
    if read == 0 or kept:
        return
    for name in required:
        if name not in seen:
            theirs = (field_map or {}).get(name, name)
            raise DataError(
                f"{source}: required field {name!r} (source field {theirs!r}) is in none of its {read} rows; "
                f"{did_you_mean(theirs, columns)}its own columns: {', '.join(sorted(columns)) or 'none'}"
            )


# ----------------------------------------------------------------------------------------------- writing


def _atomic_target(path: Path) -> tuple[int, str]:
    """A temporary file beside ``path`` with the mode a plain ``open`` would give it (mkstemp's 0600 would outlive
    the rename: the user's umask decides who may read the outputs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


@functools.cache
def _umask() -> int:
    """The process's umask, read once (reading it means setting it: done before any writer thread runs)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[TextIO]:
    """A text handle on a temporary file beside ``path``, fsynced and renamed onto ``path`` on success.

    Readers see the old file or the new one, never a partial one; on an exception the temporary is removed.
    Streaming writers (sharded stages) write row by row through it without holding the whole text.
    """
    with _atomic_file(path, "w") as handle:
        yield handle


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike[str], mode: str) -> Iterator[Any]:
    target = Path(path)
    fd, tmp = _atomic_target(target)
    try:
        with os.fdopen(fd, mode, encoding="utf-8" if "b" not in mode else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a partial one."""
    with atomic_writer(path) as handle:
        handle.write(text)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """`write_text_atomic` for bytes (a rendered plot, say)."""
    with _atomic_file(path, "wb") as handle:
        handle.write(data)


def json_line(row: Any) -> str:
    """One JSONL line (without its newline) exactly as every writer here writes it."""
    return _ENCODER.encode(row)


_dump = json_line


def _json_default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


_ENCODER = json.JSONEncoder(ensure_ascii=False, default=_json_default)  # what json.dumps builds per call


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Any]) -> int:
    """Atomically write rows (dicts or objects with ``to_dict``) as JSONL; returns the row count."""
    lines = [_dump(r.to_dict() if hasattr(r, "to_dict") else r) for r in rows]
    write_text_atomic(path, "".join(line + "\n" for line in lines))
    return len(lines)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write one JSON document, indented for people."""
    write_text_atomic(path, json.dumps(obj, ensure_ascii=False, indent=2, default=_json_default) + "\n")


def append_jsonl(path: str | os.PathLike[str], rows: Iterable[Any]) -> int:
    """Append rows and fsync; used by resumable stages. A kill mid-write can only tear the last line."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _repair_torn_tail(target)
    count = 0
    with open(target, "a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(_dump(row.to_dict() if hasattr(row, "to_dict") else row) + "\n")
            count += 1
        handle.flush()
        os.fsync(handle.fileno())
    return count


def _repair_torn_tail(path: Path) -> None:
    """Cut a trailing partial line left by a kill, so appended rows start on a line of their own."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return
        data = path.read_bytes()
        handle.truncate(data.rfind(b"\n") + 1)


def read_jsonl(path: str | os.PathLike[str], *, tolerate_torn_tail: bool = False) -> list[dict[str, Any]]:
    """Read a JSONL file we wrote; a bad line raises `DataError` naming file and line.

    With ``tolerate_torn_tail`` an unparsable *last* line (a kill mid-append, or a read while a writer appends: it
    may end mid-character) is ignored.
    """
    target = Path(path)
    if not target.is_file():
        raise DataError(f"{target}: no such file")
    # "\n" only: str.splitlines() also breaks at U+2028, U+0085 and others, which json.dumps(ensure_ascii=False)
    # leaves raw inside strings (a GPQA problem has U+2028), so a row would be cut in two.
    lines = target.read_bytes().split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            if tolerate_torn_tail and number == len(lines):
                break
            why = err.msg if isinstance(err, json.JSONDecodeError) else f"not UTF-8: {err.reason}"
            raise DataError(f"{target}: line {number}: invalid JSON ({why})") from err
    return rows


def write_parquet(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Atomically write rows as parquet; nested values are stored as JSON text for a stable schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    flat = [{k: _dump(v) if isinstance(v, (dict, list)) else v for k, v in row.items()} for row in rows]
    table = pa.Table.from_pylist(flat)
    target = Path(path)
    fd, tmp = _atomic_target(target)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def under_cwd_relative(value: Any, cwd: str | None = None) -> Any:
    """``value`` with every string that is an absolute path under the working directory written relative to it (in
    lists and dicts too): what a cache's name hashes, so that a clone elsewhere (``/work/a/outputs/x`` there,
    ``/home/b/outputs/x`` here) finds the caches its runs made under the same relative paths."""
    base = (cwd or os.getcwd()).rstrip(os.sep) + os.sep
    if isinstance(value, str):
        return value[len(base) :] if value.startswith(base) else value
    if isinstance(value, list | tuple):
        return [under_cwd_relative(v, base) for v in value]
    if isinstance(value, dict):
        return {k: under_cwd_relative(v, base) for k, v in value.items()}
    return value


def sha256_text(text: str) -> str:
    """Hex SHA-256 of a string's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
