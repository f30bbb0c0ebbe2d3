"""Wait for time to pass or for a watched file to change: inotify, or a cheap poll.

The agent watches its config file, its token file and its trigger file. Each
file's directory is watched with pyinotify, so a file may be created, replaced by
rename or deleted. Where inotify cannot help the file is polled with os.stat()
instead, and the mode of each file is logged:
- pyinotify cannot be imported (or asyncore is missing on Python 3.12+),
- no inotify instance or watch is left (EMFILE / ENOSPC),
- the directory does not exist,
- the file system delivers no events for remote changes (NFS, FUSE, ...),
- or the settings ask for polling (`BOS_REPORTER_WATCH=poll`).
Single-threaded: the agent calls `wait()` instead of sleeping.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
import warnings
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Protocol, Set, Tuple

log = logging.getLogger(__name__)

MAX_STEP = 3600.0  # keeps every single wait well inside poll()'s millisecond range
# File systems on which inotify sees no (or not all) changes.
NO_EVENT_FS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "lustre", "gpfs", "afs",
                         "glusterfs", "fuse", "fuseblk", "virtiofs", "beegfs", "panfs"})
Signature = Optional[Tuple[int, int, int, int]]
POLL_REQUESTED = "BOS_REPORTER_WATCH=poll"
IN_IGNORED = 0x8000  # inotify(7): the watch was removed (directory deleted or unmounted)
IN_Q_OVERFLOW = 0x4000  # inotify(7): the event queue overflowed


class Waiter(Protocol):
    def wait(self, timeout: float) -> Set[str]:
        """Block up to `timeout` seconds; return the kinds of the files that changed (empty on timeout)."""

    def close(self) -> None:
        """Release inotify descriptors."""


class SleepWaiter:
    """Plain sleep, for `--once`: nothing is watched."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self.sleep = sleep

    def wait(self, timeout: float) -> Set[str]:
        if timeout > 0:
            self.sleep(timeout)
        return set()

    def close(self) -> None:
        """Nothing to release."""


def load_pyinotify() -> Any:
    """The pyinotify module, or raise ImportError (Python 3.12+ needs the pyasyncore backport)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "asyncore is deprecated" on 3.10/3.11
        import pyinotify
    # pyinotify attaches its own stderr handler; its messages should use ours (R1).
    logger = logging.getLogger("pyinotify")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    return pyinotify


def signature(path: str) -> Signature:
    """What a poll compares: inode, size, mtime and ctime (ctime catches `touch` and chmod)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def mount_fs_type(path: str, mountinfo: str) -> Optional[str]:
    """File system type of the mount holding `path`, from /proc/self/mountinfo text."""
    best: Tuple[int, Optional[str]] = (-1, None)
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields or len(fields) < 5:
            continue
        mount_point = _unescape(fields[4])
        fs_type = fields[fields.index("-") + 1] if fields.index("-") + 1 < len(fields) else None
        inside = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= best[0]:
            best = (len(mount_point), fs_type)
    return best[1]


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def without_events(fs_type: Optional[str]) -> bool:
    return fs_type is not None and (fs_type in NO_EVENT_FS or fs_type.startswith("fuse."))


def existing_ancestor(path: str) -> str:
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def read_mountinfo() -> str:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


class FileWatcher:
    """Watches a few files (path -> kind); `modes` tells, per file, "inotify" or "poll"."""

    def __init__(self, files: Mapping[str, str], mode: str = "auto", poll_interval: float = 1.0,
                 load_inotify: Callable[[], Any] = load_pyinotify,
                 mountinfo: Callable[[], str] = read_mountinfo,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.files: Dict[str, str] = {os.path.abspath(p): kind for p, kind in files.items()}
        self.poll_interval = poll_interval
        self.clock = clock
        self.sleep = sleep
        self.modes: Dict[str, str] = {}
        self.reasons: Dict[str, str] = {}
        self._notifier: Any = None
        self._pending: Set[str] = set()
        self._polled: Dict[str, Signature] = {}
        self._start(mode, load_inotify, mountinfo)
        self._log_modes()

    # --- set-up -------------------------------------------------------------------------------

    def _start(self, mode: str, load_inotify: Callable[[], Any], mountinfo: Callable[[], str]) -> None:
        if mode == "poll":
            self._poll_all(self.files, POLL_REQUESTED)
            return
        try:
            pyinotify = load_inotify()
            manager = pyinotify.WatchManager()
        except (ImportError, OSError) as exc:  # no module, no asyncore, no inotify instance left
            self._poll_all(self.files, f"inotify unavailable: {exc}")
            return
        self._notifier = pyinotify.Notifier(manager, default_proc_fun=self._on_event)
        mounts = mountinfo()
        for directory, paths in self._by_directory().items():
            reason = self._watch_directory(pyinotify, manager, directory, mounts)
            for path in paths:
                if reason is None:
                    self.modes[path] = "inotify"
                else:
                    self._poll_all([path], reason)
        if "inotify" not in self.modes.values():
            self._close_notifier()

    def _by_directory(self) -> Dict[str, List[str]]:
        grouped: Dict[str, List[str]] = {}
        for path in self.files:
            grouped.setdefault(os.path.dirname(path), []).append(path)
        return grouped

    def _watch_directory(self, pyinotify: Any, manager: Any, directory: str, mounts: str) -> Optional[str]:
        """Add an inotify watch on `directory`; the reason to poll instead, or None."""
        if not os.path.isdir(directory):
            return f"directory {directory} does not exist"
        fs_type = mount_fs_type(os.path.realpath(existing_ancestor(directory)), mounts)
        if without_events(fs_type):
            return f"{fs_type} file systems deliver no inotify events for every change"
        mask = (pyinotify.IN_CLOSE_WRITE | pyinotify.IN_MOVED_TO | pyinotify.IN_MOVED_FROM
                | pyinotify.IN_CREATE | pyinotify.IN_DELETE | pyinotify.IN_ATTRIB)
        try:
            manager.add_watch(directory, mask, quiet=False)
        except pyinotify.WatchManagerError as exc:  # e.g. ENOSPC: no inotify watch left
            return f"inotify watch failed: {exc}"
        return None

    def _poll_all(self, paths: Iterable[str], reason: str) -> None:
        for path in paths:
            self.modes[path] = "poll"
            self.reasons[path] = reason
            self._polled[path] = signature(path)

    def _log_modes(self) -> None:
        """INFO for the normal cases; WARNING when inotify was wanted but could not be had."""
        for path, kind in self.files.items():
            if self.modes[path] == "inotify":
                log.info("Watching %s file %s with inotify.", kind, path)
                continue
            reason = self.reasons[path]
            level = logging.INFO if reason == POLL_REQUESTED else logging.WARNING
            log.log(level, "Watching %s file %s by polling every %gs (%s).", kind, path, self.poll_interval, reason)

    # --- waiting ------------------------------------------------------------------------------

    def wait(self, timeout: float) -> Set[str]:
        deadline = self.clock() + max(0.0, timeout)
        changed = self._take_pending()
        while not changed:
            remaining = deadline - self.clock()
            if remaining <= 0:
                break
            step = min(remaining, MAX_STEP, self.poll_interval if self._polled else MAX_STEP)
            changed = self._wait_inotify(step) if self._notifier is not None else self._sleep(step)
            changed |= self._poll()
        return changed

    def _sleep(self, seconds: float) -> Set[str]:
        self.sleep(seconds)
        return set()

    def _wait_inotify(self, seconds: float) -> Set[str]:
        try:
            if self._notifier.check_events(timeout=math.ceil(seconds * 1000)):
                self._notifier.read_events()
                self._notifier.process_events()
        except Exception:  # degrade to polling rather than crash-loop the agent
            log.error("inotify failed; polling every %gs from now on.", self.poll_interval, exc_info=True)
            self._close_notifier()
            self._poll_all([p for p, m in self.modes.items() if m == "inotify"], "inotify failed")
            return {kind for kind in self.files.values()}  # something may have been missed
        return self._take_pending()

    def _on_event(self, event: Any) -> None:
        if event.mask & IN_Q_OVERFLOW:  # events were lost: assume everything changed
            self._pending.update(self.files.values())
            return
        if event.mask & IN_IGNORED:  # the directory went away with its watch: poll its files
            lost = [p for p, m in self.modes.items() if m == "inotify" and os.path.dirname(p) == event.path]
            self._poll_all(lost, f"directory {event.path} was removed")
            self._pending.update(self.files[p] for p in lost)
            return
        kind = self.files.get(os.path.abspath(event.pathname))
        if kind is not None:
            self._pending.add(kind)

    def _take_pending(self) -> Set[str]:
        pending, self._pending = self._pending, set()
        return pending

    def _poll(self) -> Set[str]:
        changed = set()
        for path, old in self._polled.items():
            new = signature(path)
            if new != old:
                self._polled[path] = new
                changed.add(self.files[path])
        return changed

    def close(self) -> None:
        self._close_notifier()

    def _close_notifier(self) -> None:
        if self._notifier is not None:
            try:
                self._notifier.stop()
            except OSError as exc:
                log.debug("closing inotify: %s", exc)
            self._notifier = None
