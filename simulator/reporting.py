"""Booted nodes report their BSS referral token to BOS (reporter.md), as the real reporter does.

The identity and payload come from our reporter package (`bos_reporter`), so
the simulator sends exactly what a node would. A fixed pool of keep-alive
connections sends the PATCHes (bounded concurrency, report_http.py): each takes
the next queued report as soon as its answer is in, from the connection's own
data callback (no task or queue wake-up per report); a failed attempt is
re-queued through the shared scheduler after the reporter's back-off instead of
holding a connection.
The first `--real-reporters` booted nodes instead run the real `bos-reporter
--once` program against a command-line file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import tempfile
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Deque, Dict, List, Optional, Set, Tuple, Union

from bos_shared.cmdline import parse_cmdline

from .bss import REPORTER_KEYS, reporter_params
from .determinism import chance
from .report_http import ReportConnection, ReportError, report_request

from bos_reporter.identity import node_identity
from bos_reporter.schedule import DEFAULT_FREQUENCY_SECONDS, backoff_delay, frequency_seconds, period_seconds

if TYPE_CHECKING:
    from .cluster import Cluster
    from .nodes import Node

LOG = logging.getLogger(__name__)

RESTART_SEC = 10.0          # systemd RestartSec of the reporter unit (reporter.md §8)
# Where the real reporter program lives (next to our interpreter); overridable for tests.
REPORTER_EXE = Path(os.environ.get("BOS_SIM_REPORTER_EXE") or Path(sys.executable).parent / "bos-reporter")
NODE_TOKEN = "simulated-node-token"   # the API server ignores Authorization (README §8)


_PERIODS: Dict[Optional[str], float] = {}  # bos_update_frequency value -> period (a bounded memo)
_PERIODS_MAX = 1024


def report_period(params: Dict[str, str]) -> float:
    """The reporter's period for this command line (malformed or zero: the 4h default). A pure
    function of one parameter, which every node of a session shares: parsing it per report was
    a fiftieth of the simulator's CPU in a 100,000-node boot (issue 13)."""
    value = params.get("bos_update_frequency")
    period = _PERIODS.get(value)
    if period is None:
        if len(_PERIODS) >= _PERIODS_MAX:
            _PERIODS.clear()
        period = _PERIODS[value] = period_seconds(frequency_seconds(value) or DEFAULT_FREQUENCY_SECONDS)
    return period


class Reporting:
    def __init__(self, cluster: "Cluster") -> None:
        self.cluster = cluster
        self.config = cluster.config
        self.queue: Deque[Tuple["Node", int, bool]] = deque()  # (node, boot, first report of the boot)
        self._connections: List[ReportConnection] = []
        self._idle: List[ReportConnection] = []  # connections with no report in flight
        self._stopped = False
        self._real_tasks: Set[asyncio.Task] = set()
        self.children: Set[asyncio.subprocess.Process] = set()
        self.real_nodes: Set[str] = set()
        self.sent = 0
        self.succeeded = 0
        self._tmp: Optional[Path] = None

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        if not self.config.bos_url:
            return
        self._connections = [ReportConnection(self.config.bos_url) for _ in range(self.config.report_concurrency)]
        self._idle = list(self._connections)
        self._pump()

    async def stop(self) -> None:
        self._stopped = True  # nothing more is sent
        self.queue.clear()
        for task in self._real_tasks:
            task.cancel()
        await asyncio.gather(*self._real_tasks, return_exceptions=True)
        await self._stop_children()
        for conn in self._connections:
            conn.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    async def _stop_children(self) -> None:
        for proc in list(self.children):
            if proc.returncode is None:
                proc.terminate()
        for proc in list(self.children):
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()

    # ------------------------------------------------------------------ entry point

    def node_booted(self, node: "Node", boot: int) -> None:
        """A node finished booting: start its reporter."""
        if not self.config.bos_url:
            node.report_status = "disabled: no --bos-url"
            return
        node.report_attempts = 0
        if self._runs_real_reporter(node):
            self._spawn_real(node, boot)
            return
        node.report_status = "pending"
        self._enqueue(node, boot, True)

    def _runs_real_reporter(self, node: "Node") -> bool:
        """The first K nodes that boot run the real program, on this and every later boot."""
        if node.xname not in self.real_nodes and len(self.real_nodes) < self.config.real_reporters:
            self.real_nodes.add(node.xname)
        return node.xname in self.real_nodes

    def _current(self, node: "Node", boot: int) -> bool:
        return node.booted and node.boot_count == boot and self.cluster.nodes.get(node.xname) is node

    def _requeue(self, node: "Node", boot: int, first: bool) -> None:
        if self._current(node, boot):
            self._enqueue(node, boot, first)

    # ------------------------------------------------------------------ simulated reporter

    def _enqueue(self, node: "Node", boot: int, first: bool) -> None:
        self.queue.append((node, boot, first))
        self._pump()

    def _pump(self) -> None:
        """Give queued reports to idle connections."""
        while self._idle and self.queue and not self._stopped:
            self._next(self._idle.pop())

    def _next(self, conn: ReportConnection) -> None:
        """Send the next queued report that still has something to say on `conn`; the
        connection is idle again when none is left."""
        while self.queue:
            node, boot, first = self.queue.popleft()
            if self._current(node, boot) and self._attempt(conn, node, boot, first):
                return
        self._idle.append(conn)

    def _params(self, node: "Node") -> Dict[str, str]:
        """What the node's reporter reads from its /proc/cmdline (REPORTER_KEYS, as `parse_cmdline`
        finds them): told by the stored BSS entry the node booted when it can (bss.reporter_params),
        else from the rendered line, parsed."""
        entry = node.boot
        if entry is not None and node.booted and not node.fault("boot_cmdline"):
            found = reporter_params(entry, node.xname, self.cluster.bss.metadata_url)
            if found is not None:
                return found
        params = parse_cmdline(self.cluster.engine.cmdline(node))
        return {key: params[key] for key in REPORTER_KEYS if key in params}

    def _attempt(self, conn: ReportConnection, node: "Node", boot: int, first: bool) -> bool:
        """Start one report (reporter.md §2-§4); False when the node has nothing to send."""
        params = self._params(node)
        xname = node_identity(params, {})
        if not xname:
            node.report_status = "error: no identity"           # R4: the reporter exits 78
            return False
        token = params.get("bss_referral_token")
        if not token:
            node.report_status = "no-token: nothing to report"  # R5: the reporter exits 0
            return False
        node.report_attempts += 1
        request = report_request(conn.netloc, conn.prefix, xname, NODE_TOKEN, token)
        self.sent += 1
        conn.start(request, lambda answer: self._answered(conn, answer, node, boot, first, token, params))
        return True

    def _answered(self, conn: ReportConnection, answer: Union[Tuple[int, bytes], ReportError], node: "Node",
                  boot: int, first: bool, token: str, params: Dict[str, str]) -> None:
        """A report's answer: the node's reporter goes on (reported, or back-off); `conn` takes
        the next report at once."""
        try:
            outcome = self._outcome(answer)
            if self._current(node, boot):
                if outcome is None:
                    self._reported(node, boot, token, params, first)
                else:
                    node.report_status = f"retrying: {outcome}"
                    self.cluster.scheduler.call_later(backoff_delay(node.report_attempts + 1), self._requeue,
                                                      node, boot, first)
        finally:
            if not self._stopped:
                self._next(conn)

    def _outcome(self, answer: Union[Tuple[int, bytes], ReportError]) -> Optional[str]:
        """None on success, else a short reason."""
        if isinstance(answer, ReportError):
            return f"connection error {answer}"
        status, body = answer
        if 200 <= status < 300:
            self.succeeded += 1
            return None
        text = " ".join(body[:400].decode(errors="replace")[:200].split())
        return f"{status} {text}"

    def _reported(self, node: "Node", boot: int, token: str, params: Dict[str, str], first: bool) -> None:
        if first:
            self.cluster.hardware.mark("first report accepted")
        node.report_status = "reported"
        node.reported_token = token
        node.reports += 1
        node.report_attempts = 0
        period = report_period(params)
        wait = period * chance(self.config.seed, "report-wait", node.xname, boot) if first else period
        self.cluster.scheduler.call_later(wait, self._requeue, node, boot, False)

    # ------------------------------------------------------------------ real reporter

    def _spawn_real(self, node: "Node", boot: int) -> None:
        task = asyncio.create_task(self._run_real(node, boot))
        self._real_tasks.add(task)
        task.add_done_callback(self._real_tasks.discard)

    async def _run_real(self, node: "Node", boot: int) -> None:
        if not REPORTER_EXE.exists():
            node.report_status = f"error: {REPORTER_EXE} not found"
            LOG.error("node %s: cannot run the real reporter, %s does not exist", node.xname, REPORTER_EXE)
            return
        cmdline = self.cluster.engine.cmdline(node)
        token = parse_cmdline(cmdline).get("bss_referral_token", "")
        rc = await self._exec_reporter(node.xname, cmdline)
        if not self._current(node, boot):
            return
        if rc == 0:
            node.report_status = "reported (real reporter)" if token else "no-token (real reporter)"
            node.reported_token = token
            node.reports += 1 if token else 0
            return
        node.report_status = f"retrying: real reporter exited {rc}"
        if rc != 78:  # Restart=on-failure, RestartPreventExitStatus=78
            self.cluster.scheduler.call_later(RESTART_SEC, self._respawn, node, boot)

    def _respawn(self, node: "Node", boot: int) -> None:
        if self._current(node, boot):
            self._spawn_real(node, boot)

    async def _exec_reporter(self, xname: str, cmdline: str) -> int:
        tmp = self._workdir()
        cmdline_file = tmp / f"{xname}.cmdline"
        cmdline_file.write_text(cmdline + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BOS_REPORTER_", "NODE_IDENTITY"))}
        argv = [str(REPORTER_EXE), "--once", "--cmdline-file", str(cmdline_file),
                "--api-url", self.config.bos_url or "", "--token-file", str(tmp / "token")]
        with open(tmp / f"{xname}.log", "ab") as log:
            proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL, stdout=log,
                                                        stderr=asyncio.subprocess.STDOUT, env=env)
        self.children.add(proc)
        try:
            return await proc.wait()
        finally:
            self.children.discard(proc)

    def _workdir(self) -> Path:
        """Temp dir with command-line files, logs and the (fake) bearer token nodes present."""
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="bos-sim-reporters-"))
            (self._tmp / "token").write_text(NODE_TOKEN + "\n")
        return self._tmp
