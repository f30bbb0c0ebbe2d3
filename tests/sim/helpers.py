"""Helpers of the simulator tests: a recording stand-in for BOS, polling, HTTP shortcuts.

BOS is the system under test everywhere else; only here, where the simulator
is, a tiny recording stand-in for the BOS API receives the nodes' reports.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import requests

from bos_sim.stack import Simulator

FAST = 50.0  # speed factor: a 5 s boot takes 0.1 s


class FakeBos:
    """Records `PATCH /v2/components/<xname>`; answers from a per-node plan of statuses, then 200."""

    def __init__(self) -> None:
        self.patches: List[Dict[str, Any]] = []
        self.plan: Dict[str, List[int]] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_PATCH(self) -> None:  # noqa: N802 (http.server naming)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
                xname = self.path.rsplit("/", 1)[-1]
                with fake.lock:
                    planned = fake.plan.get(xname) or []
                    status = planned.pop(0) if planned else 200
                    fake.patches.append({"path": self.path, "body": body, "headers": dict(self.headers),
                                         "status": status, "time": time.monotonic()})
                payload = json.dumps({"id": xname} if status == 200 else {"title": "planned", "status": status})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v2"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def for_node(self, xname: str) -> List[Dict[str, Any]]:
        with self.lock:
            return [p for p in self.patches if p["path"].endswith("/" + xname)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def eventually(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll until `check()` is truthy and return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s (last value {value!r})")
        time.sleep(0.02)


def start_sim(sim_dir: Path, **kwargs: Any) -> Simulator:
    """A fast simulator (20 nodes unless told otherwise)."""
    return Simulator(sim_dir, **{"nodes": 20, "speed": FAST, **kwargs})


class Services:
    """requests helpers against one simulator's services."""

    def __init__(self, simulator: Simulator) -> None:
        self.urls = simulator.urls
        self.http = requests.Session()

    def get(self, service: str, path: str, **kw: Any) -> requests.Response:
        return self.http.get(self.urls[service] + path, timeout=30, **kw)

    def post(self, service: str, path: str, **kw: Any) -> requests.Response:
        return self.http.post(self.urls[service] + path, timeout=30, **kw)

    def put(self, service: str, path: str, **kw: Any) -> requests.Response:
        return self.http.put(self.urls[service] + path, timeout=30, **kw)

    def patch(self, service: str, path: str, **kw: Any) -> requests.Response:
        return self.http.patch(self.urls[service] + path, timeout=30, **kw)


def problem_detail(resp: requests.Response, status: int) -> str:
    """Assert an RFC 7807 problem with `status`; return its detail."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.headers
    body = resp.json()
    assert body["type"] == "about:blank" and body["status"] == status and body["title"], body
    return body["detail"]


def node_ids(simulator: Simulator, role: Optional[str] = None) -> List[str]:
    return [n["xname"] for n in simulator.nodes() if role is None or n["role"] == role]
