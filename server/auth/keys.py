"""Signing keys of the token issuer: a JWKS URL (PyJWKClient) or a JWKS file, cached.

Keys are looked up by `kid` in a process-local cache that is refreshed when its
lifespan has passed or when a token names a key it does not know (key
rotation), but at most once per `MIN_REFRESH` seconds so a stream of tokens
with made-up `kid`s cannot turn into a stream of fetches. Fetching blocks
(urllib), so it runs in a thread: the event loop never waits on the issuer
(api.md §6.2). A failed refresh keeps the keys already known.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Callable, Dict, List, Optional

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet
from jwt.exceptions import PyJWKClientError, PyJWKSetError

LOG = logging.getLogger("bos_server.auth")
MIN_REFRESH = 10.0   # seconds between fetches triggered by unknown key IDs
FETCH_TIMEOUT = 10.0


class KeysUnavailable(Exception):
    """No key could be fetched at all (the issuer or the file is unreachable)."""


Loader = Callable[[], List[PyJWK]]


def url_loader(url: str) -> Loader:
    """Keys from a JWKS URL, fetched with PyJWKClient (its own caching is off: ours decides)."""
    client = PyJWKClient(url, cache_jwk_set=False, cache_keys=False, timeout=FETCH_TIMEOUT)

    def load() -> List[PyJWK]:
        try:
            return list(client.get_jwk_set().keys)
        except (PyJWKClientError, PyJWKSetError) as exc:
            raise KeysUnavailable(f"cannot fetch signing keys from {url}: {exc}") from exc
    return load


def file_loader(path: str) -> Loader:
    def load() -> List[PyJWK]:
        try:
            with open(path, encoding="utf-8") as handle:
                return list(PyJWKSet.from_json(handle.read()).keys)
        except (OSError, ValueError, PyJWKSetError, jwt.InvalidKeyError) as exc:
            raise KeysUnavailable(f"cannot read signing keys from {path}: {exc}") from exc
    return load


def file_signature(path: str) -> Optional[tuple]:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class KeyRing:
    """`kid` -> key, refreshed after `lifespan` seconds or on an unknown `kid`."""

    def __init__(self, load: Loader, lifespan: float, watch_file: Optional[str] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.load = load
        self.lifespan = lifespan
        self.watch_file = watch_file
        self.clock = clock
        self.keys: Dict[Optional[str], PyJWK] = {}
        self.loaded_at: Optional[float] = None
        self.attempted_at: Optional[float] = None
        self.signature: Optional[tuple] = None
        self.checked_at = float("-inf")
        self._refreshing: Optional["asyncio.Future[None]"] = None

    async def key_for(self, kid: Optional[str]) -> Optional[PyJWK]:
        """The key a token names; a token without `kid` may use the only key there is."""
        if self._refreshing is not None:  # a fetch is under way: its answer is the freshest there is
            await asyncio.shield(self._refreshing)
        if self._stale():
            await self._refresh(force=False)
        key = self._lookup(kid)
        if key is None and self._may_refetch():
            await self._refresh(force=True)
            key = self._lookup(kid)
        if not self.keys:
            raise KeysUnavailable("no signing keys could be loaded")
        return key

    def _lookup(self, kid: Optional[str]) -> Optional[PyJWK]:
        if kid is None and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        return self.keys.get(kid)

    def _stale(self) -> bool:
        now = self.clock()
        if self.loaded_at is None or now - self.loaded_at >= self.lifespan:
            return self._may_refetch(min(MIN_REFRESH, self.lifespan))
        if self.watch_file is not None and now - self.checked_at >= 1.0:  # a stat per second at most
            self.checked_at = now
            return file_signature(self.watch_file) != self.signature
        return False

    def _may_refetch(self, interval: float = MIN_REFRESH) -> bool:
        return self.attempted_at is None or self.clock() - self.attempted_at >= interval

    async def _refresh(self, force: bool) -> None:
        """One fetch at a time per process; concurrent callers wait for it."""
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)
            return
        self._refreshing = asyncio.get_running_loop().create_future()
        try:
            await self._fetch()
        finally:
            self._refreshing.set_result(None)
            self._refreshing = None

    async def _fetch(self) -> None:
        self.attempted_at = self.clock()
        signature = file_signature(self.watch_file) if self.watch_file else None
        try:
            fetched = await asyncio.to_thread(self.load)
        except KeysUnavailable as exc:
            LOG.warning("%s; keeping the %d key(s) already known", exc, len(self.keys))
            if not self.keys:
                raise
            return
        self.keys = {key.key_id: key for key in fetched if key.public_key_use in (None, "sig")}
        self.loaded_at, self.signature = self.clock(), signature
        LOG.info("Loaded %d signing key(s)", len(self.keys))


class KeyRings:
    """Several sources (e.g. Keycloak and SPIRE): a key is looked up in each, in order."""

    def __init__(self, rings: List[KeyRing]) -> None:
        self.rings = rings

    async def key_for(self, kid: Optional[str]) -> Optional[PyJWK]:
        unavailable: List[str] = []
        for ring in self.rings:
            try:
                key = await ring.key_for(kid)
            except KeysUnavailable as exc:
                unavailable.append(str(exc))
                continue
            if key is not None:
                return key
        if len(unavailable) == len(self.rings):
            raise KeysUnavailable("; ".join(unavailable))
        return None
