"""The API's error type: an HTTP status, a short machine-readable kind and a message for people.

Every refusal the server sends is JSON ``{"error": kind, "detail": message}``. Kinds:

* ``invalid_input`` (400): wrong shape, dtype, NaN / infinity, values out of range;
* ``invalid_model_id`` (400): a model id or version that is not a safe name;
* ``unauthorized`` (401): bearer token missing or wrong (only when authentication is on);
* ``not_found`` (404): unknown model id or version, or no such route;
* ``method_not_allowed`` (405): a route called with the wrong HTTP method;
* ``not_acceptable`` (406): an ``Accept`` header naming no format the server writes;
* ``payload_too_large`` (413): body, batch or output over the configured caps;
* ``unsupported_media_type`` (415): a ``Content-Type`` other than JSON or Arrow IPC;
* ``validation`` (422): a JSON body that does not match the request schema;
* ``model_unavailable`` (503): the model's artifact failed to load;
* ``deadline_exceeded`` (503): the request ran past the server's deadline and was stopped;
* ``cancelled`` (499, never seen by a client): the client went away and the work was stopped;
* ``internal`` (500): a bug; the detail names the exception type only.
"""

from __future__ import annotations

from typing import Any

ERROR_KINDS: dict[str, int] = {
    "invalid_input": 400,
    "invalid_model_id": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "not_acceptable": 406,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "validation": 422,
    "model_unavailable": 503,
    "deadline_exceeded": 503,
    "cancelled": 499,
    "internal": 500,
}


class ApiError(Exception):
    """A refusal with an HTTP status: ``ApiError("not_found", "model 'x' ...")``.

    Args:
        kind: one of :data:`ERROR_KINDS` (which fixes the status).
        detail: what was wrong, for the client.
    """

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        self.kind = kind
        self.detail = detail
        self.status = ERROR_KINDS[kind]

    def body(self) -> dict[str, Any]:
        """The JSON body ``{"error": kind, "detail": message}``."""
        return {"error": self.kind, "detail": self.detail}
