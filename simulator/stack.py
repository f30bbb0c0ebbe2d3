"""Start and stop the real processes of a BOS stack on loopback.

Tests, the demo and the benchmarks all need the same thing: a real
`redis-server`, the API server, the operators and the simulator, each on a free
port, always stopped afterwards. This module is that one place.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from .s3 import ACCESS_KEY as S3_ACCESS_KEY, SECRET_KEY as S3_SECRET_KEY

BIN = Path(sys.executable).parent


# Ports handed out by free_port(), each claimed for this process's lifetime (see there).
_CLAIMED: Dict[int, socket.socket] = {}
PORT_SPAN = 10000  # how many ports below the kernel's ephemeral range free_port() draws from


def free_port() -> int:
    """A free loopback port that no other process on this machine will be handed meanwhile.

    A port from bind(0) is free when asked, but the kernel may give it to another process
    (another test worker, another checkout's suite, any outgoing connection) before our
    server binds it, seconds later under load. So the port is drawn from just below the
    kernel's ephemeral range (which bind(0) and connect() never use), claimed machine-wide
    by an abstract Unix socket named after it, held until this process exits (so a server
    can also be restarted on it), and checked free with a bind. Where abstract sockets do
    not exist (not Linux), the kernel's choice is used.
    """
    low = _ephemeral_low()
    start = max(1024, low - PORT_SPAN)
    if sys.platform.startswith("linux") and start < low:
        rng = random.Random()
        for _ in range(200):
            port = rng.randrange(start, low)
            if port not in _CLAIMED and _claim(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _claim(port: int) -> bool:
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        claim.bind(f"\0bos-free-port-{port}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind (TIME_WAIT is fine)
            probe.bind(("127.0.0.1", port))
    except OSError:
        claim.close()
        return False
    _CLAIMED[port] = claim
    return True


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


def http_ok(url: str, ca_file: Optional[Path] = None) -> Callable[[], bool]:
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as resp:
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

    def wait_ready(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        """wait_until(); on failure the process is stopped and the error carries its log's tail."""
        try:
            wait_until(check, timeout, what, self.proc)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise type(exc)(f"{exc}; log {self.log_path}:\n{self.log_tail()}") from exc

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class RedisServer(ManagedProcess):
    """A throw-away redis-server on a free port, without persistence."""

    def __init__(self, workdir: Path, port: Optional[int] = None, password: Optional[str] = None,
                 extra_args: Sequence[str] = (), env: Optional[dict] = None) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed (run `make os-deps`)")
        self.port = port or free_port()
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no"]
        argv += ["--requirepass", password] if password else []
        super().__init__("redis", argv + list(extra_args), workdir / "redis.log", env)
        wait_until(self._pings, 15, "redis-server", self.proc)

    def _pings(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False


class ApiServer(ManagedProcess):
    """`bos-server` on a free port (HTTPS when `extra_args` has `--tls-cert`; `ca_file` verifies it)."""

    def __init__(self, workdir: Path, redis_url: str, port: Optional[int] = None,
                 env: Optional[dict] = None, extra_args: Sequence[str] = (), ca_file: Optional[Path] = None,
                 timeout: float = 120) -> None:
        self.port = port or free_port()
        scheme = "https" if "--tls-cert" in extra_args else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [str(BIN / "bos-server"), "--host", "127.0.0.1", "--port", str(self.port),
                "--redis-url", redis_url, *extra_args]
        super().__init__("api", argv, workdir / f"api-{self.port}.log", env)
        # A readiness bound, not a speed check: two workers importing on a loaded 2-core CI machine
        # have taken over 20 s, and over 60 s at load 10-16; the wait ends as soon as /v2/version answers
        # (or the process exits).
        self.wait_ready(http_ok(self.url + "/v2/version", ca_file), timeout, "bos-server")


def scratch_dir(prefix: str = "bos-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def json_request(method: str, url: str, body: object = None, timeout: float = 30) -> Any:
    """A JSON request with the standard library (the launcher must not need `requests`)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise RuntimeError(f"{method} {url} failed with {exc.code}: {detail}") from exc
    return json.loads(raw) if raw else None


class Simulator(ManagedProcess):
    """`bos-sim` on free loopback ports; `.urls` maps service -> base URL (plus "control")."""

    def __init__(self, workdir: Path, nodes: int = 10, *, inventory: Optional[Path] = None, seed: int = 0,
                 speed: float = 1.0, bos_url: Optional[str] = None, real_reporters: int = 0,
                 extra_args: Sequence[str] = (), env: Optional[dict] = None, timeout: float = 120) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.urls_file = Path(tempfile.mkstemp(prefix="sim-urls-", suffix=".json", dir=workdir)[1])
        self.urls_file.unlink()  # the simulator creates it (atomically) when ready
        argv = [str(BIN / "bos-sim"), "--host", "127.0.0.1", "--urls-file", str(self.urls_file),
                "--seed", str(seed), "--speed", str(speed), "--real-reporters", str(real_reporters)]
        argv += ["--inventory", str(inventory)] if inventory else ["--nodes", str(nodes)]
        argv += ["--bos-url", bos_url] if bos_url else []
        argv += list(extra_args)
        super().__init__("sim", argv, workdir / f"{self.urls_file.stem}.log", env)
        self.wait_ready(self.urls_file.exists, timeout, "bos-sim")
        self.urls: dict = json.loads(self.urls_file.read_text())

    def env(self) -> dict:
        """Environment for the API server and operators to use this simulator."""
        gateway = urllib.parse.urlsplit(self.urls["s3"]).netloc
        return {"BOS_HSM_URL": self.urls["hsm"], "BOS_PCS_URL": self.urls["pcs"], "BOS_BSS_URL": self.urls["bss"],
                "BOS_CFS_URL": self.urls["cfs"], "BOS_IMS_URL": self.urls["ims"], "BOS_TAPMS_URL": self.urls["tapms"],
                "S3_PROTOCOL": "http", "S3_GATEWAY": gateway,
                "S3_ACCESS_KEY": S3_ACCESS_KEY, "S3_SECRET_KEY": S3_SECRET_KEY}

    # ------------------------------------------------------------------ control API helpers

    def control(self, method: str, path: str, body: object = None) -> Any:
        return json_request(method, self.urls["control"] + path, body)

    def summary(self) -> dict:
        return self.control("GET", "/summary")

    def nodes(self, ids: Optional[Sequence[str]] = None) -> list:
        query = "?ids=" + ",".join(ids) if ids else ""
        return self.control("GET", "/nodes" + query)["nodes"]

    def node(self, xname: str) -> dict:
        return self.control("GET", f"/nodes/{xname}")

    def requests(self, service: str, since: int = 0) -> list:
        return self.control("GET", f"/requests/{service}?since={since}")["requests"]

    def clear_requests(self, service: Optional[str] = None) -> None:
        self.control("DELETE", "/requests" + (f"/{service}" if service else ""))

    def hardware_time(self, reset: bool = False) -> dict:
        """The slowest node's completed hardware time since the last reset (`reset` starts a new count)."""
        return self.control("DELETE" if reset else "GET", "/hardware-time")

    def set_speed(self, speed: float) -> None:
        self.control("PUT", "/speed", {"speed": speed})

    def add_service_fault(self, service: str, **rule: object) -> dict:
        """e.g. add_service_fault("pcs", status=503, count=2, path_prefix="/power-status")."""
        return self.control("POST", "/faults/services", {"service": service, **rule})

    def clear_service_faults(self) -> None:
        self.control("DELETE", "/faults/services")

    def set_node_faults(self, xnames: Sequence[str], replace: bool = False, **faults: object) -> None:
        self.control("POST", "/faults/nodes", {"ids": list(xnames), "faults": faults, "replace": replace})

    def faults(self) -> dict:
        return self.control("GET", "/faults")

    def patch_node(self, xname: str, **changes: object) -> dict:
        return self.control("PATCH", f"/nodes/{xname}", changes)


class Operators(ManagedProcess):
    """`bos-operators` pointed at a BOS API, Redis and a simulator's services.

    Readiness: the operators write their liveness file (operators.md §2.1);
    we wait for it up to `ready_timeout`, failing early if the process exits, and stop it when it
    is not ready (an operators process left running would load the machine and act on later tests'
    components). 120 s is a bound, not a speed check: at load 21 starts took over 30 s.
    """

    def __init__(self, workdir: Path, bos_url: str, redis_url: str, urls: dict, env: Optional[dict] = None,
                 extra_args: Sequence[str] = (), ready_timeout: float = 120) -> None:
        exe = BIN / "bos-operators"
        if not exe.exists():
            raise RuntimeError(f"{exe} does not exist (is the server package installed? run `make venv`)")
        workdir.mkdir(parents=True, exist_ok=True)
        self.liveness = workdir / "operators-liveness"
        self.metrics_url = f"http://127.0.0.1:{free_port()}/metrics"
        argv = [str(exe), "--bos-url", bos_url, "--redis-url", redis_url, "--metrics-host", "127.0.0.1",
                "--metrics-port", self.metrics_url.rsplit(":", 1)[1].split("/")[0],
                "--hsm-url", urls["hsm"], "--pcs-url", urls["pcs"], "--bss-url", urls["bss"],
                "--cfs-url", urls["cfs"], "--ims-url", urls["ims"], "--s3-url", urls["s3"],
                "--tapms-url", urls["tapms"], *extra_args]
        full_env = {"BOS_LIVENESS_FILE": str(self.liveness), **(env or {})}
        super().__init__("operators", argv, workdir / "operators.log", full_env)
        self.wait_ready(self.liveness.exists, ready_timeout, "bos-operators")


class Stack:
    """A whole BOS stack on loopback: Redis, the simulator, the API server and (optionally) the operators.

    Started in dependency order (the simulator's nodes report to the API, the API
    and operators use the simulator's services), stopped in reverse, also when a
    start fails half-way. Tests, the demo and the benchmarks all use this one.
    """

    def __init__(self, workdir: Path, *, nodes: int = 10, inventory: Optional[Path] = None, seed: int = 0,
                 speed: float = 1.0, sim_args: Sequence[str] = (), sim_timeout: float = 120,
                 api_args: Sequence[str] = (), operators: bool = True, operator_args: Sequence[str] = (),
                 env: Optional[dict] = None) -> None:
        self.procs: List[ManagedProcess] = []
        self.operators: Optional[Operators] = None
        try:
            self.redis = self.adopt(RedisServer(workdir / "redis"))
            port = free_port()
            self.bos_url = f"http://127.0.0.1:{port}/v2"
            self.sim = self.adopt(Simulator(workdir / "sim", nodes, inventory=inventory, seed=seed, speed=speed,
                                               bos_url=self.bos_url, extra_args=sim_args, timeout=sim_timeout))
            service_env = {**self.sim.env(), **(env or {})}
            self.api = self.adopt(ApiServer(workdir / "api", self.redis.url, port=port, env=service_env,
                                               extra_args=api_args))
            if operators:
                self.operators = self.adopt(Operators(workdir / "operators", self.bos_url, self.redis.url,
                                                         self.sim.urls, env=service_env, extra_args=operator_args))
        except BaseException:
            self.stop()
            raise

    def adopt(self, proc: "ManagedProcess") -> Any:
        """Stop `proc` with the stack (last started, first stopped)."""
        self.procs.append(proc)
        return proc

    def stop(self) -> Dict[str, int]:
        """Stop everything (last started first); returns each process's exit status."""
        codes = {}
        while self.procs:
            proc = self.procs.pop()
            codes[proc.name] = proc.stop()
        return codes

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
