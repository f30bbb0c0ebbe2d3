"""Bearer tokens (reporter.md §4): from the token command, or from a token file.

The command is run before every attempt, so a token is always fresh. The file
is cached and re-read when it changes (the watcher calls `invalidate()`; its
size, mtime and inode are also compared on every use) and after a 401/403.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from typing import Mapping, Optional, Protocol, Tuple

TOKEN_COMMAND_TIMEOUT = 60.0  # a hung helper must not hang the agent


class TokenError(Exception):
    """No token could be obtained; the message says why, on one line."""


class TokenSource(Protocol):
    def get(self) -> str:
        """The bearer token; raises TokenError."""

    def invalidate(self) -> None:
        """Forget any cached token: the next get() obtains a fresh one."""

    def describe(self) -> str:
        """Where tokens come from, for log messages."""


class CommandToken:
    """The trimmed standard output of the token command (§2, §4)."""

    def __init__(self, command: str, spire_agent_path: str, env: Optional[Mapping[str, str]] = None,
                 timeout: float = TOKEN_COMMAND_TIMEOUT) -> None:
        self.argv = shlex.split(command)
        self.env = dict(os.environ if env is None else env)
        # §2: the helper finds the per-workload SPIRE agent through this variable.
        if not self.env.get("SPIRE_AGENT_PATH"):
            self.env["SPIRE_AGENT_PATH"] = spire_agent_path
        self.timeout = timeout

    def get(self) -> str:
        if not self.argv:
            raise TokenError("the token command is empty")
        try:
            done = subprocess.run(self.argv, env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=self.timeout, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise TokenError(f"token command {self.argv[0]} could not run: {exc}") from exc
        if done.returncode != 0:
            raise TokenError(f"token command {self.argv[0]} exited with status {done.returncode}: "
                             f"{one_line(done.stderr)}")
        token = done.stdout.decode("utf-8", errors="replace").strip()
        if not token:
            raise TokenError(f"token command {self.argv[0]} printed no token")
        return token

    def invalidate(self) -> None:
        """Nothing cached: the command runs before every attempt."""

    def describe(self) -> str:
        return f"token command {shlex.join(self.argv)}"


class FileToken:
    """The trimmed content of a token file, re-read whenever it changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._cached: Optional[Tuple[Tuple[int, int, int], str]] = None

    def get(self) -> str:
        try:
            signature = file_signature(os.stat(self.path))
            if self._cached is not None and self._cached[0] == signature:
                return self._cached[1]
            with open(self.path, "rb") as handle:
                token = handle.read().decode("utf-8", errors="replace").strip()
        except OSError as exc:
            self._cached = None
            raise TokenError(f"cannot read token file {self.path}: {exc.strerror or exc}") from exc
        if not token:
            self._cached = None
            raise TokenError(f"token file {self.path} is empty")
        self._cached = (signature, token)
        return token

    def invalidate(self) -> None:
        self._cached = None

    def describe(self) -> str:
        return f"token file {self.path}"


def file_signature(stat: os.stat_result) -> Tuple[int, int, int]:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def token_source(token_file: Optional[str], token_command: str, spire_agent_path: str) -> TokenSource:
    """The token file when one is configured, else the token command."""
    if token_file:
        return FileToken(token_file)
    return CommandToken(token_command, spire_agent_path)


def one_line(data: bytes, limit: int = 300) -> str:
    """A process's output or a response body as one short log line."""
    text = " ".join(data.decode("utf-8", errors="replace").split())
    return text if len(text) <= limit else text[:limit] + "..."
