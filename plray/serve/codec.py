"""Request and response bodies: JSON, and tensors in Arrow IPC (chosen by Content-Type / Accept).

Arrow layout (media type ``application/vnd.apache.arrow.stream``, one IPC stream):

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
body is ever unpickled (no Arrow extension types, no Python objects).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pyarrow as pa

from plray.serve.errors import ApiError

JSON = "application/json"
ARROW = "application/vnd.apache.arrow.stream"
MEDIA_TYPES = (JSON, ARROW)
PARAMS_KEY = b"plray.params"
INFO_KEY = b"plray.info"
SHAPE_KEY = b"shape"


def media_type(content_type: str | None) -> str:
    """The request's format from its Content-Type (JSON when absent); ApiError 415 otherwise."""
    if not content_type:
        return JSON
    base = content_type.split(";", 1)[0].strip().lower()
    if base in ("application/json", "text/json", ""):
        return JSON
    if base in (ARROW, "application/vnd.apache.arrow.file", "application/x-arrow"):
        return ARROW
    raise ApiError(
        "unsupported_media_type", f"Content-Type {base!r} is not supported; send {JSON} or {ARROW} (Arrow IPC stream)"
    )


def response_type(accept: str | None, request_type: str) -> str:
    """The answer's format: from Accept if it names one, else the request's; ApiError 406 if none fits."""
    if not accept:
        return request_type
    wanted = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    if request_type in wanted or "*/*" in wanted or "application/*" in wanted:
        return request_type
    for w in wanted:
        if w in MEDIA_TYPES:
            return w
    raise ApiError("not_acceptable", f"Accept {accept!r} names no format this server writes ({JSON}, {ARROW})")


# ---------------------------------------------------------------------- Arrow in
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
        inner = values.type
        shape: list[int] = [width]
        meta = field.metadata or {}
        if SHAPE_KEY in meta:
            try:
                shape = [int(x) for x in json.loads(meta[SHAPE_KEY])]
            except (ValueError, TypeError) as exc:
                raise ApiError("invalid_input", f"{name}: field metadata 'shape' is not a JSON list of ints") from exc
            if any(x < 1 for x in shape) or math.prod(shape) != width:
                raise ApiError(
                    "invalid_input", f"{name}: metadata shape {shape} does not multiply to the list size {width}"
                )
    elif pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        raise ApiError("invalid_input", f"{name}: variable-size lists are not accepted; use fixed_size_list")
    else:
        values, inner, shape = arr, arr.type, []
    if not (pa.types.is_floating(inner) or pa.types.is_integer(inner)):
        raise ApiError("invalid_input", f"{name}: dtype {inner} is not numeric (use float64/float32 or int64)")
    data = values.to_numpy(zero_copy_only=False)
    return data.reshape(rows, *shape)


def decode_arrow(body: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Parse an Arrow IPC stream: (params from ``plray.params``, arrays by column name)."""
    try:
        reader = pa.ipc.open_stream(pa.py_buffer(body))
        table = reader.read_all()
        for batch in table.to_batches():
            batch.validate(full=True)
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise ApiError("invalid_input", f"body is not a valid Arrow IPC stream ({exc})") from exc
    meta = table.schema.metadata or {}
    params: dict[str, Any] = {}
    if PARAMS_KEY in meta:
        try:
            params = json.loads(meta[PARAMS_KEY])
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError("invalid_input", f"schema metadata 'plray.params' is not JSON ({exc})") from exc
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


def encode_arrow(arrays: dict[str, np.ndarray], info: dict[str, Any], key: bytes = INFO_KEY) -> bytes:
    """Write arrays with a common first axis B as one record batch (layout in the module docstring)."""
    fields, columns = [], []
    for name, arr in arrays.items():
        col, meta = _to_column(np.asarray(arr))
        fields.append(pa.field(name, col.type, nullable=False, metadata=meta))
        columns.append(col)
    schema = pa.schema(fields, metadata={key: json.dumps(info).encode()})
    batch = pa.RecordBatch.from_arrays(columns, schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def encode_request_arrow(arrays: dict[str, np.ndarray], params: dict[str, Any]) -> bytes:
    """A request body in the Arrow layout (what :mod:`plray.serve.client` sends)."""
    return encode_arrow(arrays, params, PARAMS_KEY)


def decode_response_arrow(body: bytes) -> dict[str, Any]:
    """An Arrow answer as a dict: ``plray.info`` fields plus numpy arrays."""
    reader = pa.ipc.open_stream(pa.py_buffer(body))
    table = reader.read_all()
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
