"""Redis clients from a URL, Sentinel included (deploy/k8s/components/sentinel, docs/deploy.md).

`redis://` and `rediss://` are read by redis-py as they always were. For Redis
with automatic failover:

    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db][?sentinel_password=...]

(`rediss+sentinel://` for TLS; Sentinel port 26379 by default). The client asks
the Sentinels for the current primary of `service` on every (re)connect, so a
failover costs one reconnect, which the store already survives (503 meanwhile,
then back by itself). The password belongs to Redis; Sentinels protected by
another one take `sentinel_password`.
"""

from __future__ import annotations

from typing import Any, List, Tuple, Type
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}
SENTINEL_PORT = 26379


class RedisUrlError(ValueError):
    """A Redis URL that cannot be used; the message says what is wrong."""


def redis_from_url(url: str, redis_class: Type[Redis] = Redis, **kwargs: Any) -> Redis:
    """A `redis_class` client of the Redis named by `url` (connection options as for `Redis.from_url`)."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SENTINEL_SCHEMES:
        return redis_class.from_url(url, **kwargs)
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":") if credentials else ("", "", "")
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise RedisUrlError(f"a Sentinel URL names the service and optionally a database: "
                            f"{scheme}://host:26379/SERVICE[/DB], not {parts.path or '(nothing)'}")
    sentinel_password = parse_qs(parts.query).get("sentinel_password", [None])[0]
    connection = dict(kwargs, db=int(path[1]) if len(path) == 2 else 0,
                      username=unquote(username) or None, password=unquote(password) or None)
    if SENTINEL_SCHEMES[scheme]:
        connection["ssl"] = True
    sentinel_kwargs = {"password": sentinel_password, "ssl": SENTINEL_SCHEMES[scheme],
                       "socket_connect_timeout": kwargs.get("socket_connect_timeout", 1.0),
                       "socket_timeout": kwargs.get("socket_connect_timeout", 1.0)}
    sentinel = Sentinel(_hosts(hosts), sentinel_kwargs=sentinel_kwargs, **connection)
    return sentinel.master_for(path[0], redis_class=redis_class)


def _hosts(netloc: str) -> List[Tuple[str, int]]:
    """`host[:port],...` (IPv6 as `[addr]:port`) as (host, port) pairs."""
    found = []
    for item in netloc.split(","):
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest.lstrip(":")
        else:
            host, _, port = item.partition(":")
        if not host or (port and not port.isdigit()):
            raise RedisUrlError(f"bad Sentinel address {item!r}: host[:port]")
        found.append((host, int(port) if port else SENTINEL_PORT))
    return found
