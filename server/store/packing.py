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

`roundtrip` reads a reply straight off the hiredis reader redis-py set up on the connection (the
operators' subscription does the same for its messages): redis-py's `read_response` arms an
`asyncio.timeout` per reply and goes through two parser layers; the reporter's write batches make
two round trips each (the records' MGET, the compare-and-set script), and those layers and the
timer were a fifth of a round trip's client instructions (issue 13). The socket time-out still
bounds the read, through one watch timer per connection, re-armed at most once per time-out (`_check`).
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError, DataError, ResponseError, TimeoutError

SERVER_CLOSED = "Connection closed by server."  # redis-py's message for a connection Redis closed

try:
    from hiredis import pack_command as _pack
except ImportError:  # hiredis is a declared dependency; stay correct without it
    _pack = None  # type: ignore[assignment]


class HiredisPackingConnection(Connection):
    _reading_since: Optional[float] = None  # when the reply being read by `roundtrip` was asked for
    _watch: Optional[asyncio.TimerHandle] = None  # the time-out check of those reads (`_check`)

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

    async def roundtrip(self, command: Tuple[Any, ...]) -> Any:
        """Send one command and return its reply as the parser gives it (an error reply raised), with
        redis-py's errors: a dropped connection is disconnected and raised as ConnectionError, a reply
        later than the socket time-out as TimeoutError. Falls back to redis-py's send and read where the
        connection is not connected yet, its parser is not hiredis' or a health check is due."""
        parser = self._parser
        loop = asyncio.get_running_loop()
        writer = self._writer
        if writer is None or type(parser) is not _AsyncHiredisParser or not parser._connected \
                or self._reading_since is not None or not self.socket_timeout or writer.transport.is_closing() \
                or (self.health_check_interval and loop.time() > self.next_health_check):  # type: ignore[has-type]
            await self.send_command(*command)
            return await self.read_response()
        writer.write(self.pack_command(*command)[0])  # as send_packed_command: waits only for what the socket left
        if writer.transport.get_write_buffer_size():
            await self.send_packed_command([], check_health=False)
        reader, stream, pushed = parser._reader, parser._stream, parser._hiredis_PushNotificationType
        self._reading_since = loop.time()
        if self._watch is None:
            self._watch = loop.call_at(self._reading_since + self.socket_timeout, self._check)
        try:
            while True:
                reply = reader.gets()
                if reply is NOT_ENOUGH_DATA:
                    data = await stream.read(parser._read_size)
                    if not data:
                        raise ConnectionError(SERVER_CLOSED)
                    reader.feed(data)
                elif pushed is not None and isinstance(reply, pushed):  # RESP3: a push before the reply
                    await parser.handle_push_response(reply)
                else:
                    break
        except TimeoutError:  # set on the stream by _check
            await self.disconnect(nowait=True)
            raise TimeoutError(f"Timeout reading from {self._host_error()}") from None
        except OSError as exc:
            await self.disconnect(nowait=True)
            raise ConnectionError(f"Error while reading from {self._host_error()} : {exc.args}") from None
        except BaseException:  # a dropped connection, a protocol error, a cancel: never reused
            await self.disconnect(nowait=True)
            raise
        finally:
            self._reading_since = None
        if self.health_check_interval:
            self.next_health_check = loop.time() + self.health_check_interval
        if isinstance(reply, ResponseError):
            raise reply from None
        return reply

    def _check(self) -> None:
        """The watch timer: fails a read older than the socket time-out (the stream raises
        TimeoutError to its reader), else is armed again for when the current read would be."""
        self._watch = None
        since = self._reading_since
        stream = getattr(self._parser, "_stream", None)
        if since is None or stream is None:  # idle: armed again by the next read
            return
        due = since + (self.socket_timeout or 0)
        loop = asyncio.get_running_loop()
        if loop.time() >= due:
            stream.set_exception(TimeoutError())
        else:
            self._watch = loop.call_at(due, self._check)


def connection_class(url: str) -> Dict[str, Any]:
    """Extra `from_url` options for `url`: the packing connection for plain `redis://` TCP URLs.

    TLS, Unix-socket and Sentinel URLs keep the connection classes redis-py
    chooses for them.
    """
    if _pack is None or not url.lower().startswith("redis://"):
        return {}
    return {"connection_class": HiredisPackingConnection}
