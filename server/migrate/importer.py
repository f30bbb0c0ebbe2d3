"""Plan and apply an import from a reference BOS into our store.

An import is two passes of the same code: a plan (read everything, validate,
compare with the target, write nothing) and, only when the plan found no
conflicting target record (or `overwrite` was asked for), the writes. Every
write is a compare-and-set through our store, so records get our indexes
(D1) and a record changed on the target meanwhile is never overwritten
silently: it is reported as a conflict and the run exits non-zero. Records
already imported compare equal and are skipped, so a run is idempotent and an
interrupted run is resumed by running it again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from bos_shared.times import epoch

from ..store import Store, keys
from ..jsonio import dumps, loads
from . import records
from .records import Record, Rejected
from .reference import (COMPONENTS_DB, OPTIONS_DB, SESSIONS_DB, STATUSES_DB, TEMPLATES_DB, TOKENS_DB, Entry,
                        ReferenceSource, SourceError)

KINDS = ("options", "tokens", "templates", "components", "sessions", "statuses")  # the order of writes


@dataclass
class Tally:
    source: int = 0
    rejected: int = 0
    new: int = 0
    unchanged: int = 0
    conflicting: int = 0
    written: int = 0

    @property
    def importable(self) -> int:
        return self.source - self.rejected


@dataclass
class Report:
    applied: bool = False
    tallies: Dict[str, Tally] = field(default_factory=lambda: {k: Tally() for k in KINDS})
    rejects: List[Tuple[str, str, str]] = field(default_factory=list)    # kind, key, reason
    conflicts: List[Tuple[str, str, str]] = field(default_factory=list)  # kind, key, what differs

    def reject(self, kind: str, key: str, reason: str) -> None:
        self.tallies[kind].rejected += 1
        self.rejects.append((kind, key, reason))

    def conflict(self, kind: str, key: str, detail: str) -> None:
        self.tallies[kind].conflicting += 1
        self.conflicts.append((kind, key, detail))

    def as_json(self) -> Dict[str, Any]:
        return {"applied": self.applied,
                "counts": {k: {**vars(t), "importable": t.importable} for k, t in self.tallies.items()},
                "rejected": [{"kind": k, "key": key, "reason": r} for k, key, r in self.rejects],
                "conflicts": [{"kind": k, "key": key, "detail": d} for k, key, d in self.conflicts]}


def _label(record: Record) -> str:
    tenant = record.get("tenant")
    return f"{tenant}/{record['name']}" if tenant else record["name"]


class Importer:
    def __init__(self, source: ReferenceSource, store: Store, overwrite: bool = False) -> None:
        self.source = source
        self.store = store
        self.overwrite = overwrite

    async def run(self, apply: bool) -> Report:
        """The plan; then, if asked and there is no unresolved conflict, the writes."""
        plan = await self._pass(write=False)
        self._check_is_bos(plan)
        if not apply or (plan.conflicts and not self.overwrite):
            return plan
        done = await self._pass(write=True)
        done.applied = True
        return done

    def _check_is_bos(self, plan: Report) -> None:
        total = sum(t.source for t in plan.tallies.values())
        importable = sum(t.importable for t in plan.tallies.values())
        if total == 0:
            raise SourceError("the source holds no BOS data: databases 0-5 are empty")
        if importable * 2 < total:
            examples = "; ".join(f"{k} {key!r}: {r}" for k, key, r in plan.rejects[:3])
            raise SourceError(f"the source is not a BOS database: only {importable} of its {total} entries "
                              f"in databases 0-5 are BOS records (e.g. {examples})")

    async def _pass(self, write: bool) -> Report:
        report = Report()
        self.sessions_by_key: Dict[str, Tuple[Optional[str], str]] = {}
        await self._options(report, write)
        await self._tokens(report, write)
        await self._scoped(report, write, "templates", TEMPLATES_DB, records.template, self.store.templates)
        await self._components(report, write)
        await self._scoped(report, write, "sessions", SESSIONS_DB, records.session, self.store.sessions)
        await self._statuses(report, write)
        return report

    async def _converted(self, report: Report, kind: str, entries: List[Entry],
                         convert: Callable[[Entry], Any]) -> List[Tuple[Entry, Any]]:
        report.tallies[kind].source += len(entries)
        out = []
        for entry in entries:
            try:
                out.append((entry, convert(entry)))
            except Rejected as exc:
                report.reject(kind, entry.key, str(exc))
        return out

    # -- options: one record, tallied per option --

    async def _options(self, report: Report, write: bool) -> None:
        tally = report.tallies["options"]
        wanted: Record = {}
        async for chunk in self.source.entries(OPTIONS_DB):
            for entry in chunk:
                if entry.key != "options":
                    tally.source += 1
                    report.reject("options", entry.key, "unknown entry: the options database holds only 'options'")
                    continue
                try:
                    kept, dropped = records.options(entry)
                except Rejected as exc:
                    tally.source += 1
                    report.reject("options", entry.key, str(exc))
                    continue
                tally.source += len(kept) + len(dropped)
                for name, reason in dropped.items():
                    report.reject("options", f"options.{name}", reason)
                wanted = kept
        raw = await self.store.redis.get(keys.OPTIONS)
        stored = loads(raw) if raw else {}
        to_write = {}
        for name, value in wanted.items():
            if name not in stored:
                tally.new += 1
                to_write[name] = value
            elif stored[name] == value:
                tally.unchanged += 1
            else:
                report.conflict("options", f"options.{name}", f"the target has {stored[name]!r}, the source {value!r}")
                if self.overwrite:
                    to_write[name] = value
        if write and to_write:
            await self.store.options.patch(to_write)
            tally.written += len(to_write)

    # -- BSS token records: immutable, so a different record under the same token is a conflict --

    async def _tokens(self, report: Report, write: bool) -> None:
        tally = report.tallies["tokens"]
        async for chunk in self.source.entries(TOKENS_DB):
            found = await self._converted(report, "tokens", chunk, records.token)
            if not found:
                continue
            raws = await self.store.redis.mget([keys.token(e.key) for e, _r in found])
            to_write = []
            for (entry, record), raw in zip(found, raws):
                if raw is None:
                    tally.new += 1
                    to_write.append((entry.key, record))
                elif loads(raw) == record:
                    tally.unchanged += 1
                else:
                    report.conflict("tokens", entry.key, "the target has a different record for this token")
                    if self.overwrite:
                        to_write.append((entry.key, record))
            if write and to_write:
                tally.written += await self._write_tokens(to_write, report)

    async def _write_tokens(self, found: List[Tuple[str, Record]], report: Report) -> int:
        """SET NX (SET with overwrite) and the retention index, scored by the record's own time (D4)."""
        now = time.time()
        async with self.store.redis.pipeline(transaction=True) as pipe:
            for token, record in found:
                pipe.set(keys.token(token), dumps(record), nx=not self.overwrite)
                pipe.zadd(keys.TOKENS_BY_TIME, {token: epoch(record.get("timestamp")) or now})
            results = await pipe.execute()
        written = 0
        for (token, _record), ok in zip(found, results[::2]):
            if ok:
                written += 1
            else:
                report.conflict("tokens", token, "created on the target during the import")
        return written

    # -- templates and sessions --

    async def _scoped(self, report: Report, write: bool, kind: str, db: int,
                      convert: Callable[[Entry], Record], store: Any) -> None:
        tally = report.tallies[kind]
        statuses = set()
        async for chunk in self.source.entries(db):
            for entry, record in await self._converted(report, kind, chunk, convert):
                tenant, name = record["tenant"], record["name"]
                if kind == "sessions":
                    self.sessions_by_key[entry.key] = (tenant, name)
                existing = await store.get(tenant, name)
                if existing is None:
                    tally.new += 1
                elif existing == record:
                    tally.unchanged += 1
                    continue
                else:
                    report.conflict(kind, _label(record), "the target has a different record")
                    if not self.overwrite:
                        continue
                if not write:
                    continue
                if existing is None:
                    ok = await store.create(record)
                else:  # --overwrite: the source's record wins, whatever the target holds by now
                    ok = await store.update(tenant, name, lambda _old, r=record: r, create=True) is not None
                if ok:
                    tally.written += 1
                    statuses.add((record.get("status") or {}).get("status", ""))
                else:
                    report.conflict(kind, _label(record), "changed on the target during the import")
        if write and kind == "sessions" and statuses:
            await self.store.events.sessions_written(statuses)

    # -- components: chunks of 1,000, one compare-and-set call each --

    async def _components(self, report: Report, write: bool) -> None:
        tally = report.tallies["components"]
        async for chunk in self.source.entries(COMPONENTS_DB):
            found = dict((e.key, r) for e, r in await self._converted(report, "components", chunk, records.component))
            existing = await self.store.components.get_many(list(found))
            to_write = []
            for cid, record in found.items():
                if cid not in existing:
                    tally.new += 1
                    to_write.append(cid)
                elif existing[cid] == record:
                    tally.unchanged += 1
                else:
                    report.conflict("components", cid, "the target has a different record")
                    if self.overwrite:
                        to_write.append(cid)
            if write and to_write:
                tally.written += await self._write_components(found, existing, to_write, report)

    async def _write_components(self, found: Dict[str, Record], planned: Dict[str, Record],
                                ids: List[str], report: Report) -> int:
        def compute(cid: str, old: Optional[Record]) -> Optional[Record]:
            if old == planned.get(cid):  # unchanged since the plan (None: still absent)
                return loads(dumps(found[cid]))
            return None

        written = await self.store.components.update(ids, compute)
        for cid in ids:
            if cid not in written:
                report.conflict("components", cid, "changed on the target during the import")
        return len(written)

    # -- saved extended statuses: keyed like their session, so joined through it --

    async def _statuses(self, report: Report, write: bool) -> None:
        tally = report.tallies["statuses"]
        async for chunk in self.source.entries(STATUSES_DB):
            for entry, record in await self._converted(report, "statuses", chunk, records.saved_status):
                owner = self.sessions_by_key.get(entry.key)
                if owner is None:
                    report.reject("statuses", entry.key, "no importable session has this key (orphaned status)")
                    continue
                existing = await self.store.get_saved_status(*owner)
                label = f"{owner[0]}/{owner[1]}" if owner[0] else owner[1]
                if existing is None:
                    tally.new += 1
                elif existing == record:
                    tally.unchanged += 1
                    continue
                else:
                    report.conflict("statuses", label, "the target has a different saved status")
                    if not self.overwrite:
                        continue
                if write:
                    ok = await self.store.redis.set(keys.session_status(*owner), dumps(record),
                                                    nx=existing is None)
                    if ok:
                        tally.written += 1
                    else:
                        report.conflict("statuses", label, "created on the target during the import")
