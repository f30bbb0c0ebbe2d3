"""The slim supervisor of `bos-server --workers N`: what the parent becomes once the workers are forked.

It forwards SIGTERM/SIGINT to the workers, stops the others if one exits on its own
(exit status 1), and deletes the metrics directory once every worker is gone
(workers.py starts it). The parent needs nothing it imported to do that, so
run_workers replaces its image with this file run as a script by a bare interpreter:

    python -I -S .../bos_server/supervisor.py PID... [--remove DIR]

`-S` skips `site` (the virtualenv's path hooks and .pth files) and `-I` the user's
PYTHON* variables, and this module imports the standard library's bare minimum, lazily
where it can (shutil only once the workers are gone; no typing, logging, argparse or package
imports: annotations are never evaluated): ≈9 MiB of RSS against ≈15.5 MiB for `python -m bos_server.workers` with `site`,
logging and argparse (issue 13: the API's memory is the summed RSS of its processes).
So this module is standard library only and must stay importable as a plain file.
"""

from __future__ import annotations

import os
import signal
import sys
import time

LOGGER = "bos_server.workers"  # the name its log lines had (and the workers' lines have)


def log_error(message: str) -> None:
    """One line as the server's log configuration writes it (logs.FORMAT), without importing logging."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    sys.stderr.write(f"{stamp},{int(now % 1 * 1000):03d} ERROR {LOGGER}: {message}\n")
    sys.stderr.flush()


def supervise(children: list[int]) -> int:
    """Forward SIGTERM/SIGINT to the workers and wait for them all; 1 if one exited on its own."""
    stopping = False
    running = set(children)

    def forward(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in running:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})  # blocked over the exec
    status = 0
    while running:
        try:
            pid, code = os.wait()
        except ChildProcessError:  # none left (reaped elsewhere): nothing to wait for
            break
        running.discard(pid)
        if not stopping:
            log_error(f"Worker {pid} exited unexpectedly (status {code}); stopping the others")
            status = 1
            forward(signal.SIGTERM, None)
    return status


def supervise_and_remove(children: list[int], remove: str | None) -> int:
    """supervise(), then delete `remove` (the metrics files) once every worker has exited."""
    try:
        return supervise(children)
    finally:
        if remove:
            import shutil  # only now: the supervisor's resident size while it waits (see the module)
            shutil.rmtree(remove, ignore_errors=True)


def parse(argv: list[str]) -> tuple[list[int], str | None]:
    """`PID... [--remove DIR]` (what run_workers passes) as (pids, remove)."""
    remove: str | None = None
    if "--remove" in argv:
        at = argv.index("--remove")
        remove, argv = argv[at + 1], argv[:at] + argv[at + 2:]
    return [int(pid) for pid in argv], remove


def main(argv: list[str] | None = None) -> int:
    pids, remove = parse(sys.argv[1:] if argv is None else argv)
    return supervise_and_remove(pids, remove)


if __name__ == "__main__":
    sys.exit(main())
