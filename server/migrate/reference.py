"""Reading the reference BOS's Redis (api.md §6.4), read-only.

The reference keeps one logical database per record type: 0 options (key
`options`), 1 components (key = ID), 2 session templates, 3 sessions, 4 BSS
token records (key = token), 5 saved extended statuses; keys of 2, 3 and 5 are
`sha1hex(tenant or "") + "-" + sha1hex(name)`. Only SCAN, MGET, TYPE and PING
are ever sent, so an import can never change the source (a read-only ACL user
works too, docs/deploy.md).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import AsyncIterator, Dict, List, Optional
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

OPTIONS_DB, COMPONENTS_DB, TEMPLATES_DB, SESSIONS_DB, TOKENS_DB, STATUSES_DB = range(6)
DATABASES = {"options": OPTIONS_DB, "components": COMPONENTS_DB, "templates": TEMPLATES_DB,
             "sessions": SESSIONS_DB, "tokens": TOKENS_DB, "statuses": STATUSES_DB}
OPTIONS_KEY = "options"
SCOPED_KEY = re.compile(r"^[0-9a-f]{40}-[0-9a-f]{40}$")
CHUNK = 1000
OUR_PREFIX = b"bos:"  # keys of this project's own store (server/store/keys.py)


class SourceError(Exception):
    """The source cannot be read as a reference BOS database; the message says why."""


class Unreachable(SourceError):
    """The source Redis does not answer."""


def scoped_key(tenant: Optional[str], name: str) -> str:
    """The reference's key of a template, session or saved status (api.md §6.4)."""
    return hashlib.sha1((tenant or "").encode()).hexdigest() + "-" + hashlib.sha1(name.encode()).hexdigest()


@dataclass
class Entry:
    """One source key: its value, or the Redis type when it is not a string."""

    key: str
    raw: Optional[bytes]
    wrong_type: str = ""


def _db_url(url: str, db: int) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise SourceError(f"--from must be a redis:// or rediss:// URL, not {url!r}")
    if parts.path.strip("/"):
        raise SourceError(f"--from names a database ({parts.path}); give the server only: "
                          "the reference uses databases 0-5 of it")
    return urlunsplit(parts._replace(path=f"/{db}"))


def display(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        parts = parts._replace(netloc=f"{user}:***@{netloc}")
    return urlunsplit(parts)


class ReferenceSource:
    """Read-only access to the six databases of a reference BOS."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.clients: Dict[int, Redis] = {
            db: Redis.from_url(_db_url(url, db), socket_connect_timeout=3.0, socket_timeout=60.0)
            for db in DATABASES.values()}

    async def check(self) -> None:
        """Reachable, and every database of the layout exists (SourceError otherwise)."""
        try:
            await self.clients[OPTIONS_DB].ping()
        except (RedisError, OSError) as exc:
            raise Unreachable(f"cannot reach the source Redis at {display(self.url)}: {exc}") from None
        for db, client in self.clients.items():
            try:
                await client.ping()
            except ResponseError as exc:
                raise SourceError(f"{display(self.url)} is not a BOS database: it has no database {db} ({exc})") from None
            except (RedisError, OSError) as exc:
                raise Unreachable(f"lost the source Redis at {display(self.url)}: {exc}") from None

    async def size(self, db: int) -> int:
        return int(await self.clients[db].dbsize())

    async def has_our_keys(self) -> bool:
        """True when database 0 holds this project's own keys (the target was given as the source)."""
        async for _key in self.clients[OPTIONS_DB].scan_iter(match=OUR_PREFIX + b"*", count=CHUNK):
            return True
        return False

    async def entries(self, db: int) -> AsyncIterator[List[Entry]]:
        """Every entry of a database in chunks (SCAN + MGET; non-string keys reported by type)."""
        client = self.clients[db]
        batch: List[bytes] = []
        async for key in client.scan_iter(count=CHUNK):
            batch.append(key)
            if len(batch) >= CHUNK:
                yield await self._read(client, batch)
                batch = []
        if batch:
            yield await self._read(client, batch)

    async def get(self, db: int, key: str) -> Entry:
        return (await self._read(self.clients[db], [key.encode()]))[0]

    @staticmethod
    async def _read(client: Redis, keys: List[bytes]) -> List[Entry]:
        raws = await client.mget(keys)
        out = []
        for key, raw in zip(keys, raws):
            name = key.decode(errors="replace")
            if raw is None:  # deleted meanwhile, or not a string
                kind = await client.type(key)
                kind = kind.decode() if isinstance(kind, bytes) else str(kind)
                if kind == "none":
                    continue
                out.append(Entry(name, None, kind))
            else:
                out.append(Entry(name, raw if isinstance(raw, bytes) else str(raw).encode()))
        return out

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()

