"""The shared runner: pass loops (operators.md §2.2), waking on change events,
option refresh with last-good fallback (D31), logging level and liveness (§2.1).

All operators run as asyncio tasks of one process (or a subset with --only).
Each loop waits at most its frequency option between passes, and is woken
early, within about a second, by the store's change events on Redis pub/sub.
Any number of such processes may run: they coordinate through component leases
in Redis (claims.py, docs/ha.md), never through a lock of this process.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

import msgspec

from bos_shared.options import DEFAULTS, effective

from .. import metrics
from ..clients.rest import ServiceError
from ..store import keys
from .claims import FenceLost, LocalClaims
from .framework import Operator, PassContext, one_line
from .services import Services
from .subscription import Subscription

LOG = logging.getLogger("bos.operators")

MIN_WAIT = 0.05  # floor between passes even with frequency 0, so the loop never spins
FALLBACK_FREQUENCY = 5.0
OPTIONS_MAX_AGE = 0.5  # operators sharing a process share one fresh options read
LIVENESS_PERIOD = 10.0
RESUBSCRIBE_MAX = 5.0
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _EventHead(msgspec.Struct):
    """What the operators read of a change event (`dispatch`, `Operator.wants`): its kind, the
    statuses written and whether any record is enabled. The rest, the dashboard's `changes` of
    every record (store/events.py: ~190 KB for a bulk write of 2,800), is skipped unread: decoded
    in full, such an event cost ~1.3 ms, a fifth of that so (issue 13)."""

    kind: Any = None
    statuses: Any = None
    enabled: Any = None


_EVENT_HEAD = msgspec.json.Decoder(_EventHead)


def loop_time() -> float:
    """The event loop's clock: every wait of the runner is measured on it, so tests can run
    the runner on a virtual clock (tests/support/clock.py) instead of the wall clock."""
    return asyncio.get_running_loop().time()


def level_of(name: Any, default: int = logging.INFO) -> int:
    text = str(name or "").upper()
    return getattr(logging, text) if text in LEVELS else default


class OptionsCache:
    """Last good options (D31): defaults only until the first successful read."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.options: Dict[str, Any] = dict(DEFAULTS)
        self.loaded = False
        self._fetched: Optional[float] = None  # loop time of the last good read
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._fetched = None

    async def refresh(self) -> Dict[str, Any]:
        async with self._lock:
            if self._fetched is not None and loop_time() - self._fetched < OPTIONS_MAX_AGE:
                return self.options
            try:
                self.options = effective(await self.services.bos.get_options())
                self.loaded = True
                self._fetched = loop_time()
                self.services.apply_options(self.options)
            except Exception as exc:  # keep the last good options and say so
                LOG.warning("Unable to read options (using %s): %s",
                            "the last good options" if self.loaded else "the defaults", one_line(exc))
            return self.options


@dataclass
class Loop:
    """Book-keeping of one operator's loop, read by the liveness check."""

    operator: Operator
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: Optional["asyncio.Task[None]"] = None
    in_pass_since: Optional[float] = None
    passes: int = 0
    ended: float = 0.0  # loop time the last pass ended

    @property
    def log(self) -> logging.Logger:
        return LOG.getChild(self.operator.name)


class Runner:
    def __init__(self, operators: Sequence[Operator], services: Services, *,
                 redis_url: Optional[str] = None, liveness_file: Optional[str] = None,
                 recheck: float = 1.0, stuck_after: float = 1800.0, grace: float = 5.0,
                 claims: Optional[LocalClaims] = None) -> None:
        self.loops = [Loop(op) for op in operators]
        self.services = services
        self.options = OptionsCache(services)
        self.redis_url = redis_url
        self.liveness_file = Path(liveness_file) if liveness_file else None
        self.recheck = recheck
        self.stuck_after = stuck_after
        self.grace = grace
        self.stopping = asyncio.Event()
        self.claims = claims or LocalClaims()  # LocalClaims: no Redis, this process is the only replica

    # -- lifecycle --
    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit status (0 on a clean stop)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        for entry in self.loops:
            entry.task = asyncio.create_task(self._loop(entry), name=f"operator-{entry.operator.name}")
        helpers = [asyncio.create_task(self._liveness(), name="liveness"),
                   asyncio.create_task(self.claims.heartbeat(self.stopping), name="lease-heartbeat")]
        if self.redis_url:
            helpers.append(asyncio.create_task(self._events(), name="events"))
        LOG.info("Operators running: %s", ", ".join(e.operator.name for e in self.loops))
        await self.stopping.wait()
        LOG.info("Stopping operators")
        tasks = [e.task for e in self.loops if e.task]
        _, pending = await asyncio.wait(tasks, timeout=self.grace)
        for task in [*pending, *helpers]:
            task.cancel()
        await asyncio.gather(*pending, *helpers, return_exceptions=True)
        await self.services.close()
        return 0

    def stop(self) -> None:
        self.stopping.set()
        for entry in self.loops:
            entry.wake.set()

    # -- the pass loop (§2.2) --
    async def _loop(self, entry: Loop) -> None:
        op = entry.operator
        while not self.stopping.is_set():
            started = loop_time()
            entry.wake.clear()  # events from now on ask for another pass
            options = await self.options.refresh()
            logging.getLogger().setLevel(level_of(options.get("logging_level")))
            entry.in_pass_since = started
            hint: Optional[float] = None
            failed = False
            try:
                ctx = PassContext(self.services, options, entry.log, recheck=self.recheck, claims=self.claims)
                hint = await op.run_pass(ctx)
            except asyncio.CancelledError:
                raise
            except FenceLost as exc:  # a safety net: the flows handle it where they hold claims
                failed = True
                entry.log.warning("The %s pass stopped: %s", op.name, exc)
            except ServiceError as exc:  # a service (often the BOS API) unavailable after retries: one line
                failed = True
                entry.log.warning("The %s pass ended early: %s", op.name, one_line(exc))
                hint = self.recheck
            except Exception:  # §2.2 step 4: log with traceback, the loop continues
                failed = True
                entry.log.exception("Unhandled error in the %s pass", op.name)
            finally:
                entry.in_pass_since = None
                entry.passes += 1
                entry.ended = loop_time()
                metrics.operator_pass(op.name, entry.ended - started, failed)
            await self._wait(entry, self._period(op, options), entry.ended - started, hint)

    @staticmethod
    def _period(op: Operator, options: Mapping[str, Any]) -> float:
        try:
            return float(options[op.frequency_option])
        except (KeyError, TypeError, ValueError):
            return FALLBACK_FREQUENCY

    async def _wait(self, entry: Loop, period: float, elapsed: float, hint: Optional[float]) -> None:
        """Until the next pass is due, or a relevant change event arrives: then at once if the
        loop has been idle for the operator's debounce (DEBOUNCE unless it has its own), else
        when that has passed since the last pass ended, but never later than the pass
        was due anyway: an event must not put off a pass the operator asked for sooner. The
        status operator asks to look again 0.05-0.2 s after a look that found nodes moved, and
        its hand-overs' writes during the pass woke it, so each such look came 0.15 s after the
        pass ended instead: a reboot's nodes that went off waited that much longer for `On`
        (issue 13, realistic latencies)."""
        delay = period - elapsed
        if hint is not None:
            delay = min(delay, hint)
        delay = max(delay, MIN_WAIT)
        due = loop_time() + delay
        try:
            await asyncio.wait_for(entry.wake.wait(), timeout=delay)
        except asyncio.TimeoutError:
            return
        settle = min(entry.ended + entry.operator.debounce, due) - loop_time()
        if settle > 0 and not self.stopping.is_set():
            await asyncio.sleep(settle)

    # -- change events --
    def dispatch(self, event: Mapping[str, Any]) -> None:
        if event.get("kind") == "options":
            self.options.invalidate()
        for entry in self.loops:
            if entry.operator.wants(event):
                entry.wake.set()

    def wake_all(self) -> None:
        for entry in self.loops:
            entry.wake.set()

    async def _events(self) -> None:
        """Subscribe to the store's change channel; on loss, poll and keep resubscribing."""
        from redis.exceptions import RedisError

        from ..store.redis_url import redis_from_url
        delay = 0.5
        lost = False
        assert self.redis_url is not None  # started only with a Redis URL
        while not self.stopping.is_set():
            client = redis_from_url(self.redis_url)
            subscription = Subscription(client)
            try:
                await subscription.subscribe(keys.EVENTS_CHANNEL)
                LOG.info("Subscribed to change events on %s", keys.EVENTS_CHANNEL)
                if lost:
                    metrics.redis_reconnect("operators")
                    lost = False
                delay = 0.5
                self.wake_all()  # anything published while we were not listening
                while not self.stopping.is_set():
                    for data in await subscription.messages(timeout=1.0):
                        self._handle(data)
            except (RedisError, OSError) as exc:
                lost = True
                metrics.redis_error("operators")
                LOG.warning("Change events unavailable (polling meanwhile): %s", one_line(exc))
            finally:
                await _close_quietly(subscription, client)
            if not self.stopping.is_set():
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESUBSCRIBE_MAX)

    def _handle(self, data: bytes) -> None:
        try:
            head = _EVENT_HEAD.decode(data or b"{}")
        except msgspec.DecodeError:  # not JSON, or not an object
            LOG.debug("Ignoring a malformed change event: %.200r", data)
            return
        self.dispatch({"kind": head.kind, "statuses": head.statuses, "enabled": head.enabled})

    # -- liveness (§2.1) --
    def healthy(self) -> bool:
        """Every loop task alive and no pass stuck for longer than `stuck_after`."""
        now = loop_time()
        for entry in self.loops:
            if entry.task is None or entry.task.done():
                return False
            if entry.in_pass_since is not None and now - entry.in_pass_since > self.stuck_after:
                return False
        return True

    async def _liveness(self) -> None:
        while not self.stopping.is_set():
            if self.liveness_file is not None:
                if self.healthy():
                    write_liveness(self.liveness_file)
                else:
                    LOG.error("Not writing liveness: an operator loop stopped or a pass is stuck")
            await asyncio.sleep(LIVENESS_PERIOD)


async def _close_quietly(subscription: Subscription, client: Any) -> None:
    for closer in (subscription.aclose, client.aclose):
        try:
            await closer()
        except Exception as exc:  # closing a broken connection may fail; nothing else to do
            LOG.debug("Closing the event subscription: %s", one_line(exc))


def write_liveness(path: Path) -> None:
    """Write the current Unix time atomically (the probe never sees a partial file)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(f"{time.time():.3f}\n")
        tmp.replace(path)
    except OSError as exc:
        LOG.error("Unable to write the liveness file %s: %s", path, one_line(exc))


def check_liveness(path: str, delta_max: float) -> int:
    """Exit status of the liveness probe: 0 if the timestamp is younger than `delta_max` s."""
    try:
        stamp = float(Path(path).read_text().strip())
    except (OSError, ValueError):
        return 1
    return 0 if time.time() - stamp < delta_max else 1

