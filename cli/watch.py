"""Following a session: a live progress line, then the final report and an exit code.

Each poll reads the session's extended status (the server's own arithmetic,
api.md §2.9) and its member components (`GET /v2/components?session=NAME`)
for counts per phase and status. On a terminal one line is redrawn in place;
in a log or pipe a compact line is printed when something changes (and at
least every HEARTBEAT seconds), so CI logs stay short but never look hung.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, TextIO
from urllib.parse import quote

from . import output, report
from .context import Context
from .http import EXIT_FAILED_NODES, EXIT_INTERRUPTED, EXIT_OK, EXIT_TIMEOUT, Client
from .summary import ComponentCounts, count

HEARTBEAT = 10.0
MAX_DELAY = 30.0
PHASE_LABELS = (("powering_off", "off"), ("powering_on", "on"), ("configuring", "cfg"))


@dataclass
class Snapshot:
    """What one poll saw."""

    name: str
    session: Mapping[str, Any]
    ext: Mapping[str, Any]
    counts: ComponentCounts

    @property
    def status(self) -> str:
        return str(self.ext.get("status") or (self.session.get("status") or {}).get("status") or "?")

    @property
    def total(self) -> int:
        return max(int(self.ext.get("managed_components_count") or 0), self.counts.total)

    @property
    def staged(self) -> int:
        managed = int(self.ext.get("managed_components_count") or 0)
        return int(round(float(self.ext.get("percent_staged") or 0.0) * managed / 100.0))

    @property
    def done(self) -> int:
        return self.counts.succeeded + self.counts.failed

    @property
    def duration(self) -> str:
        return str((self.ext.get("timing") or {}).get("duration") or "")

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def parked_staged(self) -> bool:
        """A staged session set up and waiting for applystaged: nothing will move by itself."""
        return bool(self.session.get("stage")) and self.status == "running" and self.counts.enabled == 0


def poll(client: Client, name: str, session: Mapping[str, Any]) -> Snapshot:
    path = "/sessions/" + quote(name, safe="")
    ext = client.get(path + "/status")
    members = client.components({"session": name})
    return Snapshot(name, session, ext, count(members))


def _phases(snap: Snapshot, labels: bool) -> str:
    active = snap.counts.active_phases
    parts = [f"{(short if labels else phase)} {active.get(phase, 0)}" for phase, short in PHASE_LABELS]
    parts.append(f"{'hold' if labels else 'on_hold'} {snap.counts.on_hold}")
    return (" " if labels else ", ").join(parts)


def bar_line(snap: Snapshot, width: int) -> str:
    """The terminal line: bar, done/total, successes, failures, phases, elapsed."""
    if snap.status == "pending":
        return output.truncate(f"{snap.name} pending: waiting for session setup  {snap.duration}", width)
    fraction = snap.done / snap.total if snap.total else 0.0
    text = (f"{snap.name} {snap.status} {report.bar(fraction, 24)} {fraction * 100:3.0f}% "
            f"{snap.done}/{snap.total} | ok {snap.counts.succeeded} failed {snap.counts.failed} | "
            f"{_phases(snap, True)}" + (f" staged {snap.staged}" if snap.staged else "") + f" | {snap.duration}")
    return output.truncate(text, width)


def log_line(snap: Snapshot) -> str:
    """The pipe/log line: the same facts, spelled out."""
    if snap.status == "pending":
        return f"[{snap.duration}] {snap.name} pending: waiting for session setup"
    pct = 100.0 * snap.done / snap.total if snap.total else 0.0
    staged = f", staged {snap.staged}" if snap.staged else ""
    return (f"[{snap.duration}] {snap.name} {snap.status}: {snap.done}/{snap.total} done ({pct:.0f}%), "
            f"succeeded {snap.counts.succeeded}, failed {snap.counts.failed}{staged}; {_phases(snap, False)}")


class Display:
    """Draws progress on a terminal (one line, redrawn) or a log (a line per change)."""

    def __init__(self, stream: TextIO, tty: Optional[bool] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.clock = clock
        self.drawn = False
        self.last_key = ""
        self.last_time = 0.0

    def update(self, snap: Snapshot) -> None:
        if self.tty:
            width = shutil.get_terminal_size((100, 24)).columns - 1
            self.stream.write("\r" + bar_line(snap, width) + "\x1b[K")
            self.stream.flush()
            self.drawn = True
            return
        line = log_line(snap)
        key = line.split("] ", 1)[-1]  # the line without the elapsed time
        now = self.clock()
        if key != self.last_key or now - self.last_time >= HEARTBEAT:
            self.stream.write(line + "\n")
            self.stream.flush()
            self.last_key, self.last_time = key, now

    def finish(self) -> None:
        """End the redrawn line so what follows starts on a fresh one."""
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def _next_delay(interval: float, spent: float) -> float:
    """Back off when a poll is slow (huge sessions) so the CLI never hammers the API."""
    return min(max(interval, 2.0 * spent), max(interval, MAX_DELAY))


def follow(client: Client, name: str, display: Display, interval: float, timeout: Optional[float],
           sleep: Optional[Callable[[float], None]] = None) -> Optional[Snapshot]:
    """Poll until the session completes (or parks as staged); None on timeout."""
    session = client.get("/sessions/" + quote(name, safe=""))
    started = time.monotonic()
    while True:
        began = time.monotonic()
        snap = poll(client, name, session)
        display.update(snap)
        if snap.complete or snap.parked_staged:
            return snap
        if timeout is not None and time.monotonic() - started >= timeout:
            return None
        (sleep or time.sleep)(_next_delay(interval, time.monotonic() - began))


def final_report(ctx: Context, name: str, snap: Snapshot, stream: TextIO, final_json: bool) -> int:
    """Print the extended status and the failed nodes; the exit code says whether all succeeded."""
    path = "/sessions/" + quote(name, safe="")
    session = ctx.client.get(path)
    ext = ctx.client.get(path + "/status")
    failed: List[Dict[str, Any]] = ctx.client.components({"session": name, "status": "failed"})
    if final_json:
        ctx.emit(ext)
    stream.write("\n" + report.extended_status_text(ext, name, session) + "\n")
    if snap.parked_staged and not snap.complete:
        stream.write(f"Staged: {snap.staged} components wait for `bos applystaged --xnames ...`.\n")
    stream.write("\n" + report.failed_nodes_text(failed) + "\n")
    hint = report.retry_hint(name, session, len(failed))
    if hint:
        stream.write(hint + "\n")
    setup_error = (session.get("status") or {}).get("error")
    if failed or setup_error or float(ext.get("percent_failed") or 0.0) > 0:
        return EXIT_FAILED_NODES
    return EXIT_OK


def watch_session(ctx: Context, name: str, interval: float, timeout: Optional[float],
                  final_json: bool) -> int:
    """`bos sessions watch` and `create --watch`. Progress goes to stdout for tables, else stderr."""
    stream = ctx.out if ctx.human else ctx.err
    display = Display(stream)
    try:
        snap = follow(ctx.client, name, display, interval, timeout)
    except KeyboardInterrupt:
        display.finish()
        stream.write(f"Stopped watching; the session carries on. Resume with: bos sessions watch {name}\n")
        return EXIT_INTERRUPTED
    display.finish()
    if snap is None:
        stream.write(f"Timed out after {timeout:g}s; the session carries on. "
                     f"Resume with: bos sessions watch {name}\n")
        return EXIT_TIMEOUT
    return final_report(ctx, name, snap, stream, final_json and not ctx.human)
