"""Start and stop the real processes of a BOS stack on loopback.

Tests, the demo and the benchmarks all need the same thing: a real
`redis-server`, the API server, the operators and the simulator, each on a free
port, always stopped afterwards. This module is that one place.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Optional, Sequence

BIN = Path(sys.executable).parent


def free_port() -> int:
    """Ask the kernel for a free loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, what: str, proc: Optional[subprocess.Popen] = None) -> None:
    """Poll `check` until it is true; fail early if `proc` dies meanwhile."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before it was ready")
        if check():
            return
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)
    raise TimeoutError(f"{what} was not ready after {timeout:.0f}s")


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return 200 <= resp.status < 300
        except (urllib.error.URLError, OSError):
            return False
    return check


class ManagedProcess:
    """A child process that is always terminated (then killed) on stop()."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, env: Optional[dict] = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._log = open(log_path, "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=full_env, start_new_session=True)

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class RedisServer(ManagedProcess):
    """A throw-away redis-server on a free port, without persistence."""

    def __init__(self, workdir: Path, port: Optional[int] = None) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed (run `make os-deps`)")
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no"]
        super().__init__("redis", argv, workdir / "redis.log")
        wait_until(self._pings, 15, "redis-server", self.proc)

    def _pings(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class ApiServer(ManagedProcess):
    """`bos-server` on a free port."""

    def __init__(self, workdir: Path, redis_url: str, port: Optional[int] = None,
                 env: Optional[dict] = None, extra_args: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [str(BIN / "bos-server"), "--host", "127.0.0.1", "--port", str(self.port),
                "--redis-url", redis_url, *extra_args]
        super().__init__("api", argv, workdir / f"api-{self.port}.log", env)
        wait_until(http_ok(self.url + "/v2/version"), 20, "bos-server", self.proc)


def scratch_dir(prefix: str = "bos-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
