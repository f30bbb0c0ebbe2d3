"""Large JSON array bodies parsed item by item as they arrive (issue 10 item 7, deviations.md).

A bulk write of 100,000 components is one large JSON array. Read whole and then
parsed, it costs the body, then the body's text and the parsed items at once
(over twice its size). Parsed as it streams in, each item is decoded as soon as
its last byte arrived and its text dropped, so the request holds the parsed items
plus one network chunk: the body's bytes are never all in memory.

Items are decoded by the standard library's `raw_decode` (what the large-body
path of params.py uses), with the same refusals: NaN/Infinity, lone surrogates,
nesting too deep. An item that is not complete yet fails to decode and is tried
again once the buffer has doubled, so even one huge item costs linear time.
"""

from __future__ import annotations

import codecs
import json
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

from aiohttp import web

from .errors import BadRequest

ERROR = "Error parsing the data provided: "
_SPACE = " \t\n\r"
MIN_RETRY = 64 * 1024


class ArrayStream:
    """Feed text as it arrives (`feed`), then `finish`; `items` holds the parsed array."""

    def __init__(self, check: Callable[[Any], None]) -> None:
        self.items: List[Any] = []
        self._check = check  # per item (lone surrogates): raises BadRequest
        self._decoder = json.JSONDecoder(parse_constant=_no_constants, object_pairs_hook=_interned_keys)
        self._buf = ""
        self._pos = 0
        self._offset = 0  # characters dropped from the front of _buf
        self._state = "open"  # open -> first -> (value -> sep)* -> done
        self._retry_at = 0

    def feed(self, text: str) -> None:
        if self._pos:
            self._offset += self._pos
            self._buf = self._buf[self._pos:]
            self._pos = 0
        self._buf += text
        self._advance(final=False)

    def finish(self) -> List[Any]:
        self._advance(final=True)
        if self._state != "done":
            raise BadRequest(f"{ERROR}Expecting ',' delimiter or ']' (char {self._offset + len(self._buf)})"
                             if self._state == "sep" else
                             f"{ERROR}Expecting value (char {self._offset + len(self._buf)})")
        return self.items

    def _advance(self, final: bool) -> None:
        buf = self._buf
        while True:
            pos = self._pos
            while pos < len(buf) and buf[pos] in _SPACE:
                pos += 1
            self._pos = pos
            if pos >= len(buf):
                return
            char = buf[pos]
            if self._state == "open":
                if char != "[":
                    raise BadRequest(f"{ERROR}Expecting '[' (char {self._offset + pos})")
                self._state, self._pos = "first", pos + 1
            elif self._state == "first" and char == "]":
                self._state, self._pos = "done", pos + 1
            elif self._state in ("first", "value"):
                if not self._decode(buf, pos, final):
                    return
            elif self._state == "sep":
                if char not in ",]":
                    raise BadRequest(f"{ERROR}Expecting ',' delimiter (char {self._offset + pos})")
                self._state, self._pos = ("value" if char == "," else "done"), pos + 1
            else:
                raise BadRequest(f"{ERROR}Extra data (char {self._offset + pos})")

    def _decode(self, buf: str, pos: int, final: bool) -> bool:
        """Decode the item at `pos`; False when it may not have fully arrived yet."""
        if not final and len(buf) < self._retry_at:
            return False
        try:
            value, end = self._decoder.raw_decode(buf, pos)
        except json.JSONDecodeError as exc:
            if not final:
                self._retry_at = len(buf) + max(len(buf) - pos, MIN_RETRY)
                return False
            raise BadRequest(f"{ERROR}{exc.msg} (char {self._offset + exc.pos})") from None
        except RecursionError:
            raise BadRequest(f"{ERROR}JSON nested too deeply") from None
        except ValueError as exc:  # NaN, Infinity
            raise BadRequest(f"{ERROR}{exc}") from None
        if end >= len(buf) and not final and isinstance(value, (int, float)):  # its digits may go on
            return False
        self._check(value)
        self.items.append(value)
        self._state, self._pos, self._retry_at = "sep", end, 0
        return True


def _interned_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    """An object whose keys are shared with every other item's: each item is decoded on its
    own, so the decoder's key memo does not span items and 30,000 items would otherwise hold
    30,000 copies of each field name (~0.2x of a bulk write's size). Interned strings are
    freed once unused: a body of made-up keys leaves nothing behind."""
    return {sys.intern(key): value for key, value in pairs}


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def stream_array(request: web.Request, first: bytes, check: Callable[[Any], None],
                       limit: int) -> Optional[List[Any]]:
    """The array body whose first bytes (`first`, already read) open it, parsed as it streams.

    `limit`: bytes the body may have in all (its Content-Length).
    """
    text = codecs.getincrementaldecoder("utf-8")()
    stream = ArrayStream(check)
    seen = len(first)
    try:
        stream.feed(text.decode(first))
        async for chunk in request.content.iter_any():
            seen += len(chunk)
            if seen > limit:
                raise BadRequest("The request body is longer than its Content-Length")
            stream.feed(text.decode(chunk))
        stream.feed(text.decode(b"", final=True))
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{ERROR}the body is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    return stream.finish()
