"""Batching of concurrent single-record component writes (one read and one CAS per batch)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, List, Optional, Set, TYPE_CHECKING, Tuple

from .history import ACTOR

if TYPE_CHECKING:
    from .components import ComponentStore

Record = Dict[str, Any]
Compute = Callable[[str, Optional[Record]], Optional[Record]]
Item = Tuple[Any, ...]  # (component id, compute, future[, writer]): one caller's request


class WriteBatcher:
    """Coalesces concurrent single-record updates into batched store round trips.

    Under reporter load (thousands of PATCHes per second) a redis-py round trip
    costs more CPU than the request itself, so concurrent requests share one
    MGET and one compare-and-set call. Each record stays individually atomic.
    """

    def __init__(self, store: ComponentStore) -> None:
        self.store = store
        self.queue: List[Item] = []
        self.running = False
        self._drainer: Optional["asyncio.Task[None]"] = None  # kept: a task without a reference may vanish

    async def submit(self, component_id: str, compute: Compute) -> Optional[Record]:
        future = asyncio.get_running_loop().create_future()
        self.queue.append((component_id, compute, future, ACTOR.get()))  # the batch runs in another task
        if not self.running:
            self.running = True
            self._drainer = asyncio.ensure_future(self._drain())
        result: Optional[Record] = await future
        return result

    async def _drain(self) -> None:
        try:
            while self.queue:
                items, self.queue = self.queue, []
                await self._flush(items)
        finally:
            self.running = False

    async def _flush(self, items: List[Item]) -> None:
        while items:
            batch, items = _first_per_id(items)
            await self._run(batch)

    async def _run(self, batch: List[Item]) -> None:
        computes: Dict[str, Compute] = {cid: compute for cid, compute, _f, _a in batch}
        actors = {cid: actor for cid, _c, _f, actor in batch if actor}  # who writes each, for its history
        errors: Dict[str, BaseException] = {}

        def guarded(cid: str, old: Optional[Record]) -> Optional[Record]:
            errors.pop(cid, None)
            try:
                return computes[cid](cid, old)
            except Exception as exc:  # delivered to that caller only
                errors[cid] = exc
                return None

        try:
            written = await self.store.update(list(computes), guarded, actors)
        except Exception as exc:  # a store failure fails every caller of the batch
            for _cid, _compute, future, _actor in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for cid, _compute, future, _actor in batch:
            if future.done():
                continue
            if cid in errors:
                future.set_exception(errors[cid])
            else:
                future.set_result(written.get(cid))


def _first_per_id(items: List[Item]) -> Tuple[List[Item], List[Item]]:
    """Split so that each ID appears once per batch; later duplicates wait their turn."""
    seen: Set[str] = set()
    batch: List[Item] = []
    rest: List[Item] = []
    for item in items:
        (rest if item[0] in seen else batch).append(item)
        seen.add(item[0])
    return batch, rest
