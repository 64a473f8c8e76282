"""Request and response bodies: JSON, and tensors in Arrow IPC (chosen by Content-Type / Accept).

Arrow layout (media type ``application/vnd.apache.arrow.stream``, one IPC stream; or
``application/vnd.apache.arrow.file``, the IPC file format, read and written as such):

* one record batch (several are concatenated) with B rows, one column per array field;
* a (B,) array is a primitive column (float64/float32/int64/..., or bool in answers);
* a (B, m1, m2, ...) array is a ``fixed_size_list<primitive>[m1·m2·...]`` column whose field
  metadata ``shape`` is the JSON list ``[m1, m2, ...]`` (default ``[m1·m2·...]``, i.e. (B, m));
* every other request field (``n_samples``, ``goal``, ``version``, ...) is JSON in the schema
  metadata key ``plray.params``; answers carry their scalar fields (``model``, ``version``,
  ``batch_size``, ...) in ``plray.info``.

Request columns: predict ``states`` (B, d) and ``actions`` (B,) or (B, ad); rollout ``states``
(B, d) and ``actions`` (B, H) or (B, H, ad). Nulls are refused. Data are read straight from the
Arrow buffers (no per-number parsing), which is what keeps large batches cheap; nothing in a
body is ever unpickled (no Arrow extension types, no Python objects). Before a batch is decoded its
column types are checked on the schema and its decoded size (compressed IPC buffers included) is
read from its header and bounded; metadata JSON is bounded in size and nesting depth before parsing.
Content-Encoding ``gzip`` / ``zstd`` bodies are inflated in bounded chunks (:func:`decode_content`).
"""

from __future__ import annotations

import json
import math
import re
import struct
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
import pyarrow as pa

from plray.serve.errors import ApiError

JSON = "application/json"
ARROW = "application/vnd.apache.arrow.stream"
ARROW_FILE = "application/vnd.apache.arrow.file"
MEDIA_TYPES = (JSON, ARROW, ARROW_FILE)
PARAMS_KEY = b"plray.params"
INFO_KEY = b"plray.info"
SHAPE_KEY = b"shape"
ARROW_MAGIC = b"ARROW1"
MAX_META_BYTES = 65536
"""Largest JSON in ``plray.params`` or a field's ``shape`` metadata (a 400 beyond)."""
MAX_META_DEPTH = 32
"""Deepest nesting of ``[`` / ``{`` in that JSON (a 400 beyond, checked before parsing)."""
MAX_QUERY_BYTES = 8192
"""Longest query string of ``GET .../predict`` (a 413 beyond: send larger batches as POST bodies)."""
QUERY_TEXT_KEYS = ("version",)
"""Query parameters of ``GET .../predict`` given as text; every other one is JSON."""
CONTENT_ENCODINGS = ("identity", "gzip", "x-gzip", "zstd")
DECODE_CHUNK = 1 << 20
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def media_type(content_type: str | None) -> str:
    """The request's format from its Content-Type (JSON when absent); ApiError 415 otherwise."""
    if not content_type:
        return JSON
    base = content_type.split(";", 1)[0].strip().lower()
    if base in ("application/json", "text/json", ""):
        return JSON
    if base in (ARROW, "application/x-arrow"):
        return ARROW
    if base == ARROW_FILE:
        return ARROW_FILE
    raise ApiError(
        "unsupported_media_type",
        f"Content-Type {base!r} is not supported; send {JSON}, {ARROW} (Arrow IPC stream) or {ARROW_FILE} "
        "(Arrow IPC file)",
    )


def _accepted(accept: str) -> list[str]:
    return [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]


def response_type(accept: str | None, request_type: str, offered: tuple[str, ...] = MEDIA_TYPES) -> str:
    """The answer's format: from Accept if it names one, else the request's; ApiError 406 if none fits.

    Args:
        accept: the request's Accept header.
        request_type: the request body's format (the default answer).
        offered: the formats this endpoint writes.
    """
    default = request_type if request_type in offered else offered[0]
    if not accept:
        return default
    wanted = _accepted(accept)
    if default in wanted or "*/*" in wanted or "application/*" in wanted:
        return default
    for w in wanted:
        if w in offered:
            return w
    raise ApiError("not_acceptable", f"Accept {accept!r} names no format this endpoint writes ({', '.join(offered)})")


def json_only(accept: str | None) -> None:
    """ApiError 406 unless Accept (if given) admits JSON: for endpoints that answer only JSON."""
    response_type(accept, JSON, (JSON,))


def decode_content(body: bytes, encoding: str | None, cap: int) -> bytes:
    """A body undone from its Content-Encoding, inflated in bounded chunks: 413 past ``cap`` bytes, 415 if unknown.

    Only ``identity``, ``gzip`` and ``zstd`` are accepted; the output is never allowed to grow past
    ``cap`` (each chunk is at most :data:`DECODE_CHUNK` bytes), so a small bomb costs ``cap`` at most.
    """
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):  # applied in order, so undone in reverse
        if coding == "identity":
            continue
        if coding not in CONTENT_ENCODINGS:
            raise ApiError(
                "unsupported_media_type",
                f"Content-Encoding {coding!r} is not supported; send {', '.join(CONTENT_ENCODINGS)}",
            )
        body = _inflate(body, "gzip" if coding == "x-gzip" else coding, cap)
    return body


def _inflate(body: bytes, codec_name: str, cap: int) -> bytes:
    stream = pa.CompressedInputStream(pa.BufferReader(body), codec_name)
    out, total = [], 0
    try:
        while True:
            chunk = stream.read(DECODE_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > cap:
                raise ApiError(
                    "payload_too_large", f"body inflates past the cap of {cap:,} bytes (Content-Encoding {codec_name})"
                )
            out.append(chunk)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ApiError("invalid_input", f"body is not valid {codec_name} data ({exc})") from exc
    return b"".join(out)


# ---------------------------------------------------------------------- Arrow in
def _load_meta(raw: bytes, what: str) -> Any:
    """JSON from Arrow metadata, its size and nesting depth bounded before parsing (400 beyond)."""
    if len(raw) > MAX_META_BYTES:
        raise ApiError("invalid_input", f"{what}: {len(raw):,} bytes of JSON exceed the cap of {MAX_META_BYTES:,}")
    if raw.count(b"[") + raw.count(b"{") > MAX_META_DEPTH:  # fewer openers cannot nest deeper: skip the scan
        bare = np.frombuffer(_STRING.sub(b'""', raw), dtype=np.uint8)
        step = np.isin(bare, (ord("["), ord("{"))).astype(np.int64) - np.isin(bare, (ord("]"), ord("}")))
        depth = int(np.cumsum(step).max()) if len(step) else 0
        if depth > MAX_META_DEPTH:
            raise ApiError("invalid_input", f"{what}: JSON nested {depth} deep exceeds the cap of {MAX_META_DEPTH}")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError("invalid_input", f"{what} is not JSON ({exc})") from exc


def query_json(query: bytes, json_keys: tuple[str, ...], text_keys: tuple[str, ...] = QUERY_TEXT_KEYS) -> bytes:
    """A GET request's query string as the JSON body of the same POST request.

    ``?states=[[0.1,0,0,0]]&actions=[3]&version=v2`` becomes ``{"states": [[0.1, 0, 0, 0]],
    "actions": [3], "version": "v2"}``: each ``json_keys`` value is JSON (bounded in size and nesting
    like Arrow metadata), each ``text_keys`` value a string. Unknown or repeated keys are a 422, a
    query string over :data:`MAX_QUERY_BYTES` a 413; the body then goes through the POST route's own
    validation, so both spellings of a request are checked alike.
    """
    if len(query) > MAX_QUERY_BYTES:
        raise ApiError(
            "payload_too_large",
            f"query string of {len(query):,} bytes exceeds the cap of {MAX_QUERY_BYTES:,}; send larger batches as POST",
        )
    try:
        pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, max_num_fields=len(json_keys + text_keys))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError("invalid_input", f"query string: {exc}") from exc
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ApiError("validation", f"{key}: given twice in the query string")
        if key in text_keys:
            out[key] = value
        elif key in json_keys:
            out[key] = _load_meta(value.encode(), f"query parameter {key}")
        else:
            allowed = ", ".join(json_keys + text_keys)
            raise ApiError("validation", f"{key}: unknown query parameter; allowed: {allowed}")
    return json.dumps(out, allow_nan=True).encode()


def _column_to_numpy(name: str, col: pa.ChunkedArray | pa.Array, field: pa.Field) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if arr.null_count:
        raise ApiError("invalid_input", f"{name}: {arr.null_count} null entries; arrays must be dense")
    rows = len(arr)
    if pa.types.is_fixed_size_list(arr.type):
        width = arr.type.list_size
        values = arr.flatten()
        if values.null_count:
            raise ApiError("invalid_input", f"{name}: null entries inside the lists; arrays must be dense")
        shape: list[int] = [width]
        meta = field.metadata or {}
        if SHAPE_KEY in meta:
            got = _load_meta(meta[SHAPE_KEY], f"{name}: field metadata 'shape'")
            if not isinstance(got, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in got):
                raise ApiError("invalid_input", f"{name}: field metadata 'shape' is not a JSON list of ints")
            shape = got
            if any(x < 1 for x in shape) or math.prod(shape) != width:
                raise ApiError(
                    "invalid_input", f"{name}: metadata shape {shape} does not multiply to the list size {width}"
                )
    else:
        values, shape = arr, []
    data = values.to_numpy(zero_copy_only=False)
    return data.reshape(rows, *shape)


def _check_field(field: pa.Field) -> None:
    """Refuse a column type before any batch is read: numeric primitives or fixed-size lists of them."""
    inner = field.type.value_type if pa.types.is_fixed_size_list(field.type) else field.type
    if pa.types.is_list(field.type) or pa.types.is_large_list(field.type) or pa.types.is_list_view(field.type):
        raise ApiError("invalid_input", f"{field.name}: variable-size lists are not accepted; use fixed_size_list")
    if not (pa.types.is_floating(inner) or pa.types.is_integer(inner)):
        raise ApiError("invalid_input", f"{field.name}: dtype {inner} is not numeric (use float64/float32 or int64)")


def _fb_field(buf: bytes, table: int, index: int) -> int | None:
    """Position of a flatbuffer table's field ``index`` (None when absent)."""
    vtable = table - struct.unpack_from("<i", buf, table)[0]
    size = struct.unpack_from("<H", buf, vtable)[0]
    if 4 + 2 * index >= size:
        return None
    offset = struct.unpack_from("<H", buf, vtable + 4 + 2 * index)[0]
    return table + offset if offset else None


def _batch_nodes(metadata: bytes) -> list[int]:
    """The array lengths of a record-batch message's field nodes, read from its flatbuffer header.

    This is what the batch inflates to (with the schema's byte widths), known before any buffer is
    decompressed. Raises ValueError / struct.error on a malformed header.
    """
    root = struct.unpack_from("<I", metadata, 0)[0]
    kind_at, header_at = _fb_field(metadata, root, 1), _fb_field(metadata, root, 2)
    if kind_at is None or header_at is None or metadata[kind_at] != 3:  # 3: RecordBatch
        raise ValueError("not a record batch header")
    batch = header_at + struct.unpack_from("<I", metadata, header_at)[0]
    nodes_at = _fb_field(metadata, batch, 1)
    if nodes_at is None:
        return []
    vec = nodes_at + struct.unpack_from("<I", metadata, nodes_at)[0]
    count = struct.unpack_from("<I", metadata, vec)[0]
    if count > 4096:
        raise ValueError(f"{count} field nodes")
    return [struct.unpack_from("<q", metadata, vec + 4 + 16 * i)[0] for i in range(count)]


def _batch_bytes(lengths: list[int], schema: pa.Schema) -> int:
    """Bytes a batch decodes to: validity bitmaps and values of every node, by the schema's types."""
    widths: list[int] = []
    for field in schema:
        if pa.types.is_fixed_size_list(field.type):
            widths += [0, field.type.value_type.bit_width]
        else:
            widths.append(field.type.bit_width)
    if len(lengths) != len(widths) or min(lengths, default=0) < 0:
        raise ValueError(f"{len(lengths)} field nodes for a schema with {len(widths)}")
    return sum(n * w // 8 + n // 8 + 1 for n, w in zip(lengths, widths, strict=True))


def _read_batches(body: bytes, max_bytes: int) -> pa.Table:
    """Read an IPC stream message by message, bounding each batch's decoded size before decoding it."""
    reader = pa.ipc.MessageReader.open_stream(pa.py_buffer(body))
    first = reader.read_next_message()
    if first.type != "schema":
        raise ValueError(f"the stream starts with a {first.type!r} message, not a schema")
    schema = pa.ipc.read_schema(first)
    for f in schema:
        _check_field(f)
    batches, total = [], 0
    while True:
        try:
            message = reader.read_next_message()
        except StopIteration:
            break
        if message.type != "record batch":
            raise ValueError(f"{message.type!r} messages are not accepted (no dictionaries)")
        total += _batch_bytes(_batch_nodes(message.metadata.to_pybytes()), schema)
        if total > max_bytes:
            raise ApiError("payload_too_large", f"Arrow body decodes past the cap of {max_bytes:,} bytes")
        batch = pa.ipc.read_record_batch(message, schema)
        batch.validate(full=True)
        batches.append(batch)
    return pa.Table.from_batches(batches, schema=schema)


def decode_arrow(
    body: bytes, *, file: bool = False, max_bytes: int = 256 << 20
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Parse an Arrow IPC stream (or, with ``file``, an IPC file): (``plray.params``, arrays by column).

    Column types are checked on the schema and each batch's decoded size (compressed buffers
    included) against ``max_bytes`` before it is read; metadata JSON is bounded in size and depth.
    """
    what = "Arrow IPC file" if file else "Arrow IPC stream"
    try:
        if file:  # magic, padding, the same stream, then a footer we need not read
            if len(body) < 12 or body[:6] != ARROW_MAGIC or body[-6:] != ARROW_MAGIC:
                raise ValueError("no ARROW1 magic at both ends")
            body = body[8:]
        table = _read_batches(body, max_bytes)
    except ApiError:
        raise
    except (pa.ArrowException, ValueError, OSError, struct.error, IndexError, StopIteration) as exc:
        raise ApiError("invalid_input", f"body is not a valid {what} ({exc})") from exc
    meta = table.schema.metadata or {}
    params: dict[str, Any] = {}
    if PARAMS_KEY in meta:
        params = _load_meta(meta[PARAMS_KEY], "schema metadata 'plray.params'")
        if not isinstance(params, dict):
            raise ApiError("invalid_input", "schema metadata 'plray.params' must be a JSON object")
    arrays = {}
    for i, name in enumerate(table.column_names):
        arrays[name] = _column_to_numpy(name, table.column(i), table.schema.field(i))
    return params, arrays


# ---------------------------------------------------------------------- Arrow out
def _to_column(arr: np.ndarray) -> tuple[pa.Array, dict[bytes, bytes] | None]:
    arr = np.ascontiguousarray(arr)
    if arr.ndim == 1:
        return pa.array(arr), None
    width = math.prod(arr.shape[1:])
    flat = pa.array(arr.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, width), {SHAPE_KEY: json.dumps(list(arr.shape[1:])).encode()}


def encode_arrow(
    arrays: dict[str, np.ndarray], info: dict[str, Any], key: bytes = INFO_KEY, *, file: bool = False
) -> bytes:
    """Write arrays with a common first axis B as one record batch (an IPC stream, or with ``file`` an IPC file)."""
    fields, columns = [], []
    for name, arr in arrays.items():
        col, meta = _to_column(np.asarray(arr))
        fields.append(pa.field(name, col.type, nullable=False, metadata=meta))
        columns.append(col)
    schema = pa.schema(fields, metadata={key: json.dumps(info).encode()})
    batch = pa.RecordBatch.from_arrays(columns, schema=schema)
    sink = pa.BufferOutputStream()
    with (pa.ipc.new_file if file else pa.ipc.new_stream)(sink, schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def encode_request_arrow(arrays: dict[str, np.ndarray], params: dict[str, Any]) -> bytes:
    """A request body in the Arrow layout (what :mod:`plray.serve.client` sends)."""
    return encode_arrow(arrays, params, PARAMS_KEY)


def decode_response_arrow(body: bytes) -> dict[str, Any]:
    """An Arrow answer (IPC stream or file) as a dict: ``plray.info`` fields plus numpy arrays."""
    if body[:6] == ARROW_MAGIC:
        table = pa.ipc.open_file(pa.py_buffer(body)).read_all()
    else:
        table = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
    meta = table.schema.metadata or {}
    out: dict[str, Any] = json.loads(meta.get(INFO_KEY, b"{}"))
    for i, name in enumerate(table.column_names):
        col = table.column(i).combine_chunks()
        if pa.types.is_fixed_size_list(col.type):
            fmeta = table.schema.field(i).metadata or {}
            shape = json.loads(fmeta.get(SHAPE_KEY, json.dumps([col.type.list_size]).encode()))
            out[name] = col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), *shape)
        else:
            out[name] = col.to_numpy(zero_copy_only=False)
    return out


# ---------------------------------------------------------------------- JSON out
def encode_json(payload: dict[str, Any]) -> bytes:
    """JSON with numpy arrays as nested lists (non-finite numbers are refused upstream)."""

    def default(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, np.generic):
            return obj.item()
        raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

    return json.dumps(payload, default=default, separators=(",", ":"), allow_nan=False).encode()
