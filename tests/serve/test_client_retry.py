"""The Python client retries idempotent calls on a dropped connection and on a lost replica's 5xx (a
plain-text 500, Serve's 503), with backoff; the server's own final answers are never retried."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from plray.serve.client import ApiClientError, WorldModelClient


def _serve(answers: list[tuple[int, bytes]]) -> tuple[ThreadingHTTPServer, list[int]]:
    seen: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answers[min(len(seen), len(answers) - 1)]
            seen.append(status)
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if body.startswith(b"{") else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, seen


def test_lost_replica_5xx_is_retried_until_an_answer() -> None:
    ok = json.dumps({"models": [], "unavailable": {}}).encode()
    httpd, seen = _serve([(500, b"Internal Server Error"), (503, b"no replica"), (200, ok)])
    try:
        client = WorldModelClient(f"http://127.0.0.1:{httpd.server_port}", backoff_s=0.01)
        assert client.models() == []
        assert seen == [500, 503, 200]
    finally:
        httpd.shutdown()


def test_final_answers_are_not_retried() -> None:
    body = json.dumps({"error": "model_unavailable", "detail": "bad artifact"}).encode()
    httpd, seen = _serve([(503, body), (200, b"{}")])
    try:
        client = WorldModelClient(f"http://127.0.0.1:{httpd.server_port}", backoff_s=0.01)
        with pytest.raises(ApiClientError, match="model_unavailable"):
            client.models()
        assert seen == [503]
    finally:
        httpd.shutdown()


def test_a_refused_connection_gives_up_after_the_retries() -> None:
    httpd, _ = _serve([(200, b"{}")])
    port = httpd.server_port
    httpd.shutdown()
    httpd.server_close()
    client = WorldModelClient(f"http://127.0.0.1:{port}", retries=2, backoff_s=0.01)
    with pytest.raises(ConnectionError):
        client.models()
