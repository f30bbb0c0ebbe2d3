"""A Redis connection that builds commands with hiredis' C packer.

redis-py's asyncio connection always packs commands in pure Python (its sync
client uses hiredis when available, the asyncio one does not): on the write
path that was a third of the API's CPU, since every record written sends about
ten script arguments. `hiredis.pack_command` produces the same bytes (the
split of a multi-word command name and the bytes-like conversions below are
those of redis-py's own hiredis serializer). Without a hiredis that has
`pack_command` (hiredis >= 2.0), the stock connection is used.
"""

from __future__ import annotations

from typing import Any, Dict, List

from redis.asyncio.connection import Connection
from redis.exceptions import DataError

try:
    from hiredis import pack_command as _pack
except ImportError:  # hiredis is a declared dependency; stay correct without it
    _pack = None  # type: ignore[assignment]


class HiredisPackingConnection(Connection):
    def pack_command(self, *args: Any) -> List[bytes]:
        if isinstance(args[0], str):
            args = tuple(args[0].encode().split()) + args[1:]
        elif b" " in args[0]:
            args = tuple(args[0].split()) + args[1:]
        try:
            return [_pack(args)]
        except TypeError:  # bytearray/memoryview (rare: converted, then packed), or bool, None, ...
            args = tuple(bytes(a) if isinstance(a, (bytearray, memoryview)) else a for a in args)
        try:
            return [_pack(args)]
        except TypeError as exc:  # the error redis-py raises for what it cannot send
            raise DataError(str(exc)) from None


def connection_class(url: str) -> Dict[str, Any]:
    """Extra `from_url` options for `url`: the packing connection for plain `redis://` TCP URLs.

    TLS, Unix-socket and Sentinel URLs keep the connection classes redis-py
    chooses for them.
    """
    if _pack is None or not url.lower().startswith("redis://"):
        return {}
    return {"connection_class": HiredisPackingConnection}
