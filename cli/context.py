"""What every command handler gets: the API client, the output format and the streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TextIO

from . import output
from .config import Settings
from .http import Client


@dataclass
class Context:
    settings: Settings
    fmt: str
    out: TextIO
    err: TextIO
    _client: Optional[Client] = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        """Built on first use, so `--help` and argument errors never touch the network."""
        if self._client is None:
            self._client = Client(self.settings)
        return self._client

    @property
    def human(self) -> bool:
        return self.fmt == "table"

    def emit(self, data: Any, human: Optional[Callable[[], str]] = None) -> None:
        output.emit(self.out, data, self.fmt, human)

    def say(self, text: str) -> None:
        """A message for people: on stdout in table mode, on stderr otherwise (keeps JSON clean)."""
        stream = self.out if self.human else self.err
        stream.write(text + "\n")
