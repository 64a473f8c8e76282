"""A Python client of the world-model API (standard library HTTP + pyarrow; one connection per thread).

    from plray.serve.client import WorldModelClient

    client = WorldModelClient("http://127.0.0.1:8000", fmt="arrow")
    out = client.predict("reacher", states, actions)          # {"next_states": (B, d), ...}
    traj = client.rollout("reacher", s0, action_seqs, goal={"kind": "unseen", "name": "far_fingertip"})
    a = client.plan("reacher", state, goal={"kind": "task", "goal": [1.0, 0.0]})

Arrays come back as numpy arrays in either format. A refusal raises :class:`ApiClientError`
carrying the status, the error kind and the server's message. The token defaults to the
``PLRAY_SERVE_TOKEN`` environment variable.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

import numpy as np

from plray.serve import codec

RETRY_STATUSES = frozenset({500, 502, 503, 504})
"""Statuses of a lost or restarting replica (Serve's proxy, a dying actor)."""
FINAL_KINDS = frozenset({"model_unavailable", "deadline_exceeded", "internal"})
"""Server refusals with these kinds are answers, not a lost replica: never retried."""
_DROPPED = (
    http.client.RemoteDisconnected,
    http.client.CannotSendRequest,
    http.client.IncompleteRead,
    ConnectionError,  # refused, reset, aborted, broken pipe
    socket.gaierror,
)
ARRAY_FIELDS = {"next_states", "std", "samples", "distribution", "states", "rewards", "terminated", "returns"}


class ApiClientError(RuntimeError):
    """The server refused a request: ``status``, ``kind`` (e.g. ``invalid_input``) and ``detail``."""

    def __init__(self, status: int, kind: str, detail: str) -> None:
        super().__init__(f"{status} {kind}: {detail}")
        self.status, self.kind, self.detail = status, kind, detail


def _final(data: bytes) -> bool:
    """Whether a 5xx body is the server's own ``{error, detail}`` with a kind that a retry would not change."""
    try:
        err = json.loads(data)
    except ValueError:
        return False
    return isinstance(err, dict) and err.get("error") in FINAL_KINDS


def _predict_query(arrays: dict[str, Any], params: dict[str, Any]) -> str:
    """``GET .../predict``'s query string: arrays and options as compact JSON, ``version`` as text."""
    items = {k: np.asarray(v).tolist() for k, v in arrays.items()}
    items |= {k: v for k, v in params.items() if v is not None}
    return "&".join(
        f"{k}={quote(v if k in codec.QUERY_TEXT_KEYS else json.dumps(v, separators=(',', ':')), safe='[],:')}"
        for k, v in items.items()
    )


def _client_error(status: int, data: bytes) -> ApiClientError:
    """A refusal as an ApiClientError: the server's ``{error, detail}``, or kind ``proxy_error`` for anything else.

    Anything else is an answer the application never wrote: Serve's proxy (a request timeout, a lost
    replica) or its HTTP server (uvicorn's plain-text 400 on a malformed request); see docs/serve.md.
    """
    try:
        err = json.loads(data)
    except ValueError:
        err = None
    if isinstance(err, dict) and isinstance(err.get("error"), str) and "detail" in err:
        return ApiClientError(status, err["error"], str(err["detail"]))
    text = data[:500].decode(errors="replace").strip() or "(empty body)"
    return ApiClientError(status, "proxy_error", f"not an answer of the API (from the proxy or HTTP server): {text}")


class WorldModelClient:
    """Client of one server.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000`` (plus the route prefix, if any).
        fmt: ``arrow`` (binary tensors, for large batches) or ``json``.
        token: bearer token (default: ``$PLRAY_SERVE_TOKEN``; none if unset).
        timeout: seconds per request.
        retries: further attempts of a call after a dropped connection or a lost replica's 5xx
            (every call of this API is idempotent: predictions, rollouts and plans change nothing).
        backoff_s: first wait between attempts, doubled each time (at most 2 s).
    """

    def __init__(
        self,
        base_url: str,
        *,
        fmt: str = "arrow",
        token: str | None = None,
        timeout: float = 120.0,
        retries: int = 6,
        backoff_s: float = 0.05,
    ) -> None:
        if fmt not in ("arrow", "json"):
            raise ValueError(f"fmt: expected 'arrow' or 'json', got {fmt!r}")
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url: expected http(s)://host[:port][/prefix], got {base_url!r}")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path
        self.fmt = fmt
        self.token = token if token is not None else os.environ.get("PLRAY_SERVE_TOKEN") or None
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff_s = float(backoff_s)
        self._local = threading.local()

    # ------------------------------------------------------------------ transport
    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            conn = cls(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str | None = None,
    ) -> tuple[int, str, bytes]:
        """Send one request: (status, content type, body).

        Retried up to ``retries`` times with exponential backoff on a dropped connection and on a 5xx that
        is not one of the server's own final answers (:data:`FINAL_KINDS`), i.e. a lost replica.
        """
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            conn = self._conn()
            try:
                conn.request(method, self.prefix + path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except _DROPPED:
                self.close()
                if last:
                    raise
                self._wait(attempt)
                continue
            if resp.status in RETRY_STATUSES and not last and not _final(data):
                self.close()
                self._wait(attempt)
                continue
            return resp.status, resp.getheader("content-type", ""), data
        raise AssertionError("unreachable")

    def _wait(self, attempt: int) -> None:
        # the first retry is immediate: a dropped keep-alive connection is the common case
        if attempt:
            time.sleep(min(2.0, self.backoff_s * 2 ** (attempt - 1)))

    def _check(self, status: int, ctype: str, data: bytes) -> None:
        if status >= 400:
            raise _client_error(status, data)

    def _get_json(self, path: str) -> Any:
        status, ctype, data = self.request("GET", path)
        self._check(status, ctype, data)
        return json.loads(data)

    def _post(self, path: str, arrays: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        params = {k: v for k, v in params.items() if v is not None}
        if self.fmt == "arrow":
            body = codec.encode_request_arrow({k: np.asarray(v) for k, v in arrays.items()}, params)
            status, ctype, data = self.request("POST", path, body, codec.ARROW, codec.ARROW)
        else:
            payload = {**params, **{k: np.asarray(v).tolist() for k, v in arrays.items()}}
            status, ctype, data = self.request("POST", path, json.dumps(payload).encode(), codec.JSON, codec.JSON)
        return self._decode(status, ctype, data)

    def _decode(self, status: int, ctype: str, data: bytes) -> dict[str, Any]:
        """An array answer (JSON or Arrow) as a dict of numpy arrays and scalars; raises on a refusal."""
        self._check(status, ctype, data)
        if ctype.startswith(codec.ARROW):
            return codec.decode_response_arrow(data)
        out = json.loads(data)
        for key in ARRAY_FIELDS & set(out):
            if out[key] is not None:
                out[key] = np.asarray(out[key])
        return out

    @staticmethod
    def _id(model_id: str) -> str:
        return quote(model_id, safe="")

    # ------------------------------------------------------------------ API
    def healthz(self) -> dict[str, Any]:
        """``GET /healthz``."""
        return self._get_json("/healthz")

    def metrics(self) -> str:
        """``GET /metrics`` (Prometheus text of the replica that answered)."""
        status, ctype, data = self.request("GET", "/metrics")
        self._check(status, ctype, data)
        return data.decode()

    def models(self) -> list[dict[str, Any]]:
        """``GET /v1/models``: the served models' summaries."""
        return self._get_json("/v1/models")["models"]

    def model(self, model_id: str, version: str | None = None) -> dict[str, Any]:
        """``GET /v1/models/{id}``: summary, versions, manifest, metrics, identifiability."""
        q = f"?version={quote(version)}" if version else ""
        return self._get_json(f"/v1/models/{self._id(model_id)}{q}")

    def reload(self) -> dict[str, Any]:
        """``POST /v1/admin/reload`` (on the replica that answers)."""
        status, ctype, data = self.request("POST", "/v1/admin/reload")
        self._check(status, ctype, data)
        return json.loads(data)

    def predict(
        self,
        model_id: str,
        states: Any,
        actions: Any,
        *,
        n_samples: int = 0,
        seed: int | None = None,
        version: str | None = None,
        include_std: bool = True,
        include_distribution: bool = True,
        method: str = "auto",
    ) -> dict[str, Any]:
        """Next states for states (B, d) and actions (B,) / (B, ad).

        ``method``: ``"auto"`` (JSON clients send a request whose query string fits in
        ``codec.MAX_QUERY_BYTES`` as ``GET ...?states=..&actions=..``, one proxy hop instead of two,
        and larger ones as POST), ``"GET"`` or ``"POST"``.

        Returns:
            ``next_states`` (B, d), and per model kind ``std`` (B, d), ``samples`` (B, n, d),
            ``distribution`` (B, S), plus ``model``, ``version``, ``batch_size``.
        """
        params = {
            "n_samples": n_samples or None,
            "seed": seed,
            "version": version,
            "include_std": None if include_std else False,
            "include_distribution": None if include_distribution else False,
        }
        path = f"/v1/models/{self._id(model_id)}/predict"
        arrays = {"states": states, "actions": actions}
        if self.fmt == "json" and method != "POST":
            query = _predict_query(arrays, params)
            if len(query) <= codec.MAX_QUERY_BYTES or method == "GET":
                return self._decode(*self.request("GET", f"{path}?{query}", accept=codec.JSON))
        return self._post(path, arrays, params)

    def rollout(
        self,
        model_id: str,
        states: Any,
        actions: Any,
        *,
        goal: dict[str, Any] | None = None,
        gamma: float | None = None,
        mode: str | None = None,
        seed: int | None = None,
        version: str | None = None,
    ) -> dict[str, Any]:
        """Trajectories of action sequences (B, H) / (B, H, ad) from states (B, d).

        Returns:
            ``states`` (B, H, d); with a goal ``rewards`` (B, H), ``terminated`` (B, H), ``returns`` (B,).
        """
        params = {"goal": goal, "gamma": gamma, "mode": mode, "seed": seed, "version": version}
        return self._post(f"/v1/models/{self._id(model_id)}/rollout", {"states": states, "actions": actions}, params)

    def plan(self, model_id: str, state: Any, goal: dict[str, Any], **options: Any) -> dict[str, Any]:
        """``POST /v1/models/{id}/plan``: ``{"action", "value", "method", "seconds", ...}``.

        Args:
            state: the current state (d,).
            goal: a goal spec (``{"kind": "task" | "unseen" | "region", ...}``).
            **options: method, horizon, population, elites, iterations, seed, gamma, resolution, ...
        """
        payload = {"state": np.asarray(state, dtype=np.float64).tolist(), "goal": goal, **options}
        status, ctype, data = self.request(
            "POST", f"/v1/models/{self._id(model_id)}/plan", json.dumps(payload).encode(), codec.JSON, codec.JSON
        )
        self._check(status, ctype, data)
        return json.loads(data)
