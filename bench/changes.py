"""The driver's wake-ups: the store's change events, so a wait ends when the change happens.

bench.boot timed a session by polling its status every 0.1 s, so each wall time held 0-0.1 s
(~0.05 s on average) of polling after the real completion: most of the 0.07 s margin left on
the realistic 10,000-node goal (issue 13). The API publishes an event on every session write
and one per component write (server/store/events.py), as the write happens; the driver reads
them here, in a thread, and wakes its wait at each one that may have ended it. The poll stays,
slow, for what no event announces; if the subscription is lost, waits poll at the fast period.

The events are read as the operators read them (server/operators/subscription.py): raw socket
reads parsed by hiredis, a few µs per message, and only each message's head is decoded. Redis
pushes every event to one more subscriber, which costs it a write per message; the driver no
longer asks Redis ten times a second.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Dict, Optional

import hiredis
import msgspec
from redis import Redis

from bos_server.store import keys

FALLBACK_PERIOD = 1.0  # s: the poll for what no event announces (none is known)
READ_BYTES = 1 << 16
READ_TIMEOUT = 0.5  # s: how soon the thread notices `close`
MESSAGE = b"message"
SUBSCRIBE = b"subscribe"


class _Head(msgspec.Struct):
    """What decides a wake-up (the rest of a message, e.g. a bulk write's `changes`, is skipped)."""

    kind: str = ""
    enabled: bool = True
    t: int = 0  # ms: when the API made a component event with changes (its delivery delay, for the record)


_HEAD = msgspec.json.Decoder(_Head)


def wakes(data: bytes) -> bool:
    """Whether an event may end one of the driver's waits. A session write may (pending ->
    running -> complete), and so may a component write that left a record disabled (the write
    that empties the enabled index is one: every record it wrote is disabled). A component
    write of enabled records only (a boot's reports: most of the messages) cannot. An event
    that cannot be read wakes: a needless check costs the driver a few reads."""
    return _wakes(_head(data))


def _head(data: bytes) -> Optional[_Head]:
    try:
        return _HEAD.decode(data)
    except msgspec.DecodeError:
        return None


def _wakes(head: Optional[_Head]) -> bool:
    return head is None or head.kind != "components" or not head.enabled


class ChangeEvents:
    """The change channel on a connection of its own, read by a thread: `sleep(period)` is the
    driver's wait between checks, ended by the next event that `wakes`."""

    def __init__(self, redis: Redis, fallback: float = FALLBACK_PERIOD) -> None:
        self.fallback = fallback
        self.messages = 0  # received since `counted`, for the record
        self.bytes = 0
        self.delay_ms_max = 0.0  # the longest from an event's making to its arrival here
        self.subscribed = threading.Event()  # Redis confirmed the subscription and it still holds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connection: Any = redis.connection_pool.make_connection()
        self._thread = threading.Thread(target=self._listen, name="change-events", daemon=True)

    def start(self) -> "ChangeEvents":
        self._connection.connect()
        self._connection.send_command("SUBSCRIBE", keys.EVENTS_CHANNEL)
        self._thread.start()
        return self

    def period(self, fast: float) -> float:
        """How long to wait for an event before checking anyway: the slow fallback while
        subscribed, `fast` (the old poll) when not."""
        return max(fast, self.fallback) if self.subscribed.is_set() else fast

    def sleep(self, fast: float) -> None:
        """Wait for an event that `wakes`, at most `period(fast)`. The flag is cleared after the
        wait and before the caller's next check, so an event during that check wakes the next
        wait at once and one after the clear is seen by the check itself (each event is published
        after its write)."""
        self._wake.wait(self.period(fast))
        self._wake.clear()

    def _listen(self) -> None:
        try:
            self._read(self._connection._sock)  # redis-py's socket, read raw as the operators do
        except OSError:
            pass  # the connection broke: waits poll at the fast period from now on
        finally:
            self.subscribed.clear()
            self._wake.set()  # a wait under way goes back to the fast poll at once

    def _read(self, sock: socket.socket) -> None:
        reader = hiredis.Reader()
        sock.settimeout(READ_TIMEOUT)
        while not self._stop.is_set():
            try:
                data = sock.recv(READ_BYTES)
            except socket.timeout:
                continue
            if not data:
                return  # Redis closed the connection
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                self._handle(reply)

    def _handle(self, reply: Any) -> None:
        if not isinstance(reply, list) or len(reply) != 3:
            return
        if reply[0] == MESSAGE:
            head = _head(reply[2])
            if _wakes(head):
                self._wake.set()
            self.messages += 1
            self.bytes += len(reply[2])
            if head is not None and head.t:
                self.delay_ms_max = max(self.delay_ms_max, time.time() * 1000 - head.t)
        elif reply[0] == SUBSCRIBE:
            self.subscribed.set()

    def counted(self) -> Dict[str, float]:
        """What arrived since the last call (messages, MB, the longest delay), and start again."""
        out = {"messages": self.messages, "megabytes": round(self.bytes / 1e6, 1),
               "delay_ms_max": round(self.delay_ms_max, 1)}
        self.messages, self.bytes, self.delay_ms_max = 0, 0, 0.0
        return out

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()  # within READ_TIMEOUT
        self._connection.disconnect()
