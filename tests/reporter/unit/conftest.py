"""Fixtures for the reporter's unit tests: a tiny local HTTP server standing in for BOS.

These tests also run under Python 3.9 and 3.13 with only the reporter's own
dependencies (test_matrix.py), so nothing here may import the server side.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Deque, Dict, Iterator, List, Optional, Tuple

import pytest

from bos_reporter.config import Settings

Reply = Tuple[int, bytes]


class RecordedRequest:
    def __init__(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    def json(self) -> object:
        return json.loads(self.body)


class StubBos:
    """Answers every request with the next scripted reply (default 200 `{}`) and records it."""

    def __init__(self, tls: Optional[ssl.SSLContext] = None) -> None:
        self.requests: List[RecordedRequest] = []
        self.replies: Deque[Reply] = deque()
        self.received = threading.Condition()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with stub.received:
                    status, reply = stub.replies.popleft() if stub.replies else (200, b"{}")
                    stub.requests.append(RecordedRequest(self.command, self.path, dict(self.headers), body))
                    stub.received.notify_all()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_PATCH = do_GET = do_PUT = do_POST = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/v2"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def reply(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def wait_for(self, count: int, timeout: float = 10.0) -> List[RecordedRequest]:
        with self.received:
            if not self.received.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def problem(status: int, title: str, detail: str) -> Reply:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return status, json.dumps(body).encode()


@pytest.fixture
def stub() -> Iterator[StubBos]:
    server = StubBos()
    yield server
    server.close()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("bearer-1\n")
    return path


def make_settings(tmp_path: Path, endpoint: str, token_file: Optional[Path] = None, **overrides: object) -> Settings:
    """Settings as the agent would load them, pointing at files under tmp_path."""
    values = dict(
        endpoint=endpoint,
        token_command="/bin/false",
        token_file=str(token_file) if token_file else None,
        spire_agent_path="/usr/bin/bos-reporter-spire-agent",
        ca_bundle=str(tmp_path / "ca-bundle.pem"),
        cmdline_file=str(tmp_path / "cmdline"),
        trigger_file=str(tmp_path / "run" / "report-now"),
        config_file=str(tmp_path / "bos-reporter.conf"),
        watch_mode="auto",
        poll_interval=0.05,
    )
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
