"""A Redis connection that builds commands with hiredis' C packer.

redis-py's asyncio connection always packs commands in pure Python (its sync
client uses hiredis when available, the asyncio one does not): on the write
path that was a third of the API's CPU, since every record written sends about
ten script arguments. `hiredis.pack_command` produces the same bytes (the
split of a multi-word command name and the bytes-like conversions below are
those of redis-py's own hiredis serializer). Without a hiredis that has
`pack_command` (hiredis >= 2.0), the stock connection is used.

It also sends without `asyncio.wait_for`: redis-py bounds the send by the socket
time-out with `wait_for`, which on Python 3.11 wraps the write in a new task and
costs a turn of the event loop per command (issue 13: `POST /v2/sessions` is one
command per request); `asyncio.timeout` bounds it the same way inside the caller's task, and
only when the socket did not take the whole command at once (then there is something to wait for).
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Iterable, List, Union

from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError, DataError, TimeoutError

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

    async def send_packed_command(self, command: Union[bytes, str, Iterable[bytes]], check_health: bool = True) -> None:
        """redis-py's, with the time-out of `asyncio.timeout` instead of `wait_for` (the errors are its own)."""
        if not self.is_connected or not self.socket_timeout:
            await super().send_packed_command(command, check_health)
            return
        if check_health:
            await self.check_health()
        if isinstance(command, str):
            command = command.encode()
        if isinstance(command, bytes):
            command = [command]
        try:
            writer = self._writer
            if not writer.transport.is_closing():
                writer.writelines(command)  # the event loop sends at once what the socket takes
                if not writer.transport.get_write_buffer_size():
                    return  # all of it went out: nothing to wait for, no timer to arm (one per command)
                async with asyncio.timeout(self.socket_timeout):
                    await writer.drain()
                return
            async with asyncio.timeout(self.socket_timeout):
                await self._send_packed_command(command)
        except asyncio.TimeoutError:
            await self.disconnect(nowait=True)
            raise TimeoutError("Timeout writing to socket") from None
        except OSError as exc:
            await self.disconnect(nowait=True)
            number, message = ("UNKNOWN", exc.args[0]) if len(exc.args) == 1 else exc.args[:2]
            raise ConnectionError(f"Error {number} while writing to socket. {message}.") from exc
        except BaseException:  # an unfinished send (cancelled): the connection cannot be reused
            await self.disconnect(nowait=True)
            raise


def connection_class(url: str) -> Dict[str, Any]:
    """Extra `from_url` options for `url`: the packing connection for plain `redis://` TCP URLs.

    TLS, Unix-socket and Sentinel URLs keep the connection classes redis-py
    chooses for them.
    """
    if _pack is None or not url.lower().startswith("redis://"):
        return {}
    return {"connection_class": HiredisPackingConnection}
