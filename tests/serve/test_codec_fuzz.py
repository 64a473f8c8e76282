"""The Arrow codec under hostile bodies (no Serve needed): nested metadata, compression bombs, the IPC
file format, and a hypothesis fuzz of random and mutated IPC bytes: nothing but the API's own 4xx
:class:`~plray.serve.errors.ApiError` may come out of :func:`plray.serve.codec.decode_arrow`."""

from __future__ import annotations

import gzip

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plray.serve import codec
from plray.serve.errors import ApiError

CAP = 4 << 20


def _ipc(table: pa.Table, compression: str | None = None, file: bool = False) -> bytes:
    sink = pa.BufferOutputStream()
    opts = pa.ipc.IpcWriteOptions(compression=compression)
    with (pa.ipc.new_file if file else pa.ipc.new_stream)(sink, table.schema, options=opts) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _request(rows: int = 3, meta: bytes = b'{"n_samples": 1}', compression: str | None = None) -> bytes:
    states = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(rows * 4)), 4)
    table = pa.table({"states": states, "actions": pa.array(np.zeros(rows, dtype=np.int64))})
    return _ipc(table.replace_schema_metadata({codec.PARAMS_KEY: meta}), compression)


def _refused(body: bytes, **kwargs: object) -> ApiError:
    with pytest.raises(ApiError) as info:
        codec.decode_arrow(body, max_bytes=CAP, **kwargs)  # type: ignore[arg-type]
    assert 400 <= info.value.status < 500
    return info.value


@pytest.mark.parametrize("depth", [33, 5_000, 200_000])
def test_deeply_nested_params_are_a_400_not_a_recursion_error(depth: int) -> None:
    err = _refused(_request(meta=b"[" * depth + b"]" * depth))
    assert err.status == 400 and "plray.params" in err.detail


def test_nested_shape_metadata_and_strings_with_brackets() -> None:
    states = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(4)), 4)
    field = pa.field("states", states.type, metadata={codec.SHAPE_KEY: b"[" * 10_000 + b"]" * 10_000})
    body = _ipc(
        pa.Table.from_arrays([states, pa.array([0])], schema=pa.schema([field, pa.field("actions", pa.int64())]))
    )
    assert "shape" in _refused(body).detail
    # brackets inside strings are not nesting: a version string full of them is fine
    params, _ = codec.decode_arrow(_request(meta=b'{"version": "' + b"[" * 100 + b'"}'))
    assert params == {"version": "[" * 100}


@pytest.mark.parametrize("compression", ["zstd", "lz4"])
def test_compressed_ipc_bomb_is_refused_before_decoding(compression: str) -> None:
    body = _request(rows=2_000_000, compression=compression)  # 2e6 · 5 · 8 bytes = 80 MB decoded
    assert len(body) < 512 << 10
    err = _refused(body)
    assert err.status == 413 and f"{CAP:,}" in err.detail
    params, arrays = codec.decode_arrow(_request(rows=10, compression=compression), max_bytes=CAP)
    assert arrays["states"].shape == (10, 4) and params == {"n_samples": 1}


def test_arrow_file_format_is_read_as_a_file() -> None:
    body = codec.encode_arrow(
        {"states": np.ones((2, 4)), "actions": np.arange(2)}, {"seed": 3}, codec.PARAMS_KEY, file=True
    )
    assert codec.media_type("application/vnd.apache.arrow.file") == codec.ARROW_FILE
    params, arrays = codec.decode_arrow(body, file=True)
    assert params == {"seed": 3} and arrays["states"].shape == (2, 4)
    assert "Arrow IPC file" in _refused(_request(), file=True).detail  # a stream sent as a file
    out = codec.decode_response_arrow(codec.encode_arrow({"x": np.arange(3)}, {"a": 1}, file=True))
    assert out["a"] == 1 and out["x"].tolist() == [0, 1, 2]


def test_content_encoding_inflates_in_bounded_chunks() -> None:
    bomb = gzip.compress(b"\0" * (64 << 20))
    with pytest.raises(ApiError) as info:
        codec.decode_content(bomb, "gzip", CAP)
    assert info.value.status == 413 and "inflates past" in info.value.detail
    zbomb = pa.compress(b"\0" * (64 << 20), codec="zstd", asbytes=True)
    with pytest.raises(ApiError) as info:
        codec.decode_content(zbomb, "zstd", CAP)
    assert info.value.status == 413
    assert codec.decode_content(gzip.compress(b"hello"), "gzip", CAP) == b"hello"
    assert codec.decode_content(b"hello", "identity", CAP) == b"hello"
    with pytest.raises(ApiError) as info:
        codec.decode_content(b"x", "br", CAP)
    assert info.value.status == 415 and "gzip" in info.value.detail
    with pytest.raises(ApiError) as info:
        codec.decode_content(b"not gzip", "gzip", CAP)
    assert info.value.status == 400


def _decode_any(body: bytes) -> None:
    for file in (False, True):
        try:
            codec.decode_arrow(body, file=file, max_bytes=CAP)
        except ApiError as exc:
            assert 400 <= exc.status < 500, exc.detail


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
SEEDS = [_request(), _request(compression="zstd"), _request(compression="lz4"), _request(meta=b'{"goal": [[[1]]]}')]


@FUZZ
@given(st.binary(max_size=4096))
def test_fuzz_random_bytes(body: bytes) -> None:
    _decode_any(body)


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 1 << 16),
)
def test_fuzz_mutated_ipc(seed: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    body = bytearray(seed)
    for pos, value in flips:
        body[pos % len(body)] = value
    _decode_any(bytes(body))
    _decode_any(bytes(body[: cut % (len(body) + 1)]))
    _decode_any(b"ARROW1\0\0" + bytes(body) + b"ARROW1")


@FUZZ
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=4), c),
        max_leaves=50,
    ),
    st.integers(0, 2000),
)
def test_fuzz_nested_metadata(value: object, depth: int) -> None:
    import json

    raw = b"[" * depth + json.dumps(value).encode() + b"]" * depth
    _decode_any(_request(meta=raw))
    _decode_any(_request(meta=raw[: len(raw) // 2]))
