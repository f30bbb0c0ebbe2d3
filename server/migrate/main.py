"""`bos-import`: import a running reference BOS's data (issue 16, docs/deploy.md "Migration").

    bos-import --from redis://cray-bos-db:6379 [--redis-url OURS] [--apply] [--overwrite] [--json]

Dry run by default: prints what would be imported and every entry that would be
rejected, with the reason. Exit status: 0 done (rejects are reported, not
fatal), 1 refused (not a BOS database, the target is the source, conflicting
target records: nothing written), 2 usage, 3 a Redis cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import List, Optional
from urllib.parse import urlsplit

from redis.exceptions import RedisError

from ..config import env
from ..store import Store
from .importer import KINDS, Importer, Report
from .reference import DATABASES, ReferenceSource, SourceError, Unreachable, display

COLUMNS = ("source", "importable", "rejected", "new", "unchanged", "conflicting", "written")


class TargetError(Exception):
    pass


def parse(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bos-import", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Import a running reference BOS's Redis (options, BSS token records, session templates, "
                    "components, sessions, saved session statuses) into this BOS. Dry run unless --apply.",
        epilog="exit status: 0 done (rejected entries are reported, not fatal); 1 refused, nothing written "
               "(not a BOS database, target inside the source, conflicting target records); 3 a Redis "
               "cannot be reached. Runbook: docs/deploy.md")
    parser.add_argument("--from", dest="source", required=True, metavar="URL",
                        help="the reference BOS's Redis server, e.g. redis://cray-bos-db:6379 (read only)")
    parser.add_argument("--redis-url", default=env("BOS_REDIS_URL", "redis://cray-bos-db:6379"),
                        help="this BOS's Redis, as given to bos-server (BOS_REDIS_URL)")
    parser.add_argument("--apply", action="store_true", help="write (default: dry run, nothing written)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace target records that differ from the source (a catch-up run before cut-over)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON document")
    return parser.parse_args(argv)


def _server(url: str) -> tuple:
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0) if parts.path.strip("/").isdigit() or not parts.path.strip("/") else -1
    return (parts.hostname or "localhost", parts.port or 6379, db)


def check_target(source_url: str, target_url: str) -> None:
    """The target must not be one of the source's databases 0-5: writing there would write to the source."""
    host, port, db = _server(target_url)
    source_host, source_port, _ = _server(source_url)
    if (host, port) == (source_host, source_port) and db in DATABASES.values():
        raise TargetError(f"the target {display(target_url)} is database {db} of the source server, which the "
                          "reference uses (databases 0-5): import into another Redis, or a database from 6 up")


async def run(args: argparse.Namespace) -> Report:
    check_target(args.source, args.redis_url)
    source = ReferenceSource(args.source)
    store = Store.connect(args.redis_url)
    try:
        await source.check()
        if await source.has_our_keys():
            raise SourceError(f"{display(args.source)} holds this BOS's own store (keys bos:*), not a reference "
                              "BOS's databases: give the reference's Redis as --from")
        if not await store.ping(timeout=3.0):
            raise Unreachable(f"cannot reach the target Redis at {display(args.redis_url)}")
        return await Importer(source, store, overwrite=args.overwrite).run(apply=args.apply)
    finally:
        await source.close()
        await store.close()


def render(report: Report, args: argparse.Namespace) -> str:
    lines = [f"bos-import: {display(args.source)} (reference layout, databases 0-5) -> {display(args.redis_url)}",
             f"{'':12}" + "".join(f"{c:>12}" for c in COLUMNS)]
    for kind in KINDS:
        t = report.tallies[kind]
        values = (t.source, t.importable, t.rejected, t.new, t.unchanged, t.conflicting, t.written)
        lines.append(f"{kind:12}" + "".join(f"{v:>12}" for v in values))
    if report.rejects:
        lines.append(f"rejected ({len(report.rejects)}):")
        lines += [f"  {kind} {key}: {reason}" for kind, key, reason in report.rejects]
    if report.conflicts:
        lines.append(f"conflicting target records ({len(report.conflicts)}):")
        lines += [f"  {kind} {key}: {detail}" for kind, key, detail in report.conflicts]
    lines.append(_outcome(report, args))
    return "\n".join(lines)


def _outcome(report: Report, args: argparse.Namespace) -> str:
    if report.applied and report.conflicts and not args.overwrite:
        return "done, except the records that changed on the target during the import: run again to resume"
    if report.applied:
        return "done: imported; a second run reports every record unchanged"
    if report.conflicts and not args.overwrite:
        return ("refused: the target already has different records (listed above); nothing was written. "
                "Resolve them, or pass --overwrite to replace them with the source's")
    return "dry run: nothing written; run again with --apply to write"


def exit_code(report: Report, args: argparse.Namespace) -> int:
    return 1 if report.conflicts and not args.overwrite else 0


def main(argv: Optional[List[str]] = None) -> None:
    args = parse(argv)
    try:
        report = asyncio.run(run(args))
    except Unreachable as exc:
        print(f"bos-import: error: {exc}", file=sys.stderr)
        sys.exit(3)
    except (SourceError, TargetError) as exc:
        print(f"bos-import: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except (RedisError, OSError) as exc:
        print(f"bos-import: error: Redis failed during the import: {exc}; run again to resume "
              "(records already written compare unchanged)", file=sys.stderr)
        sys.exit(3)
    print(json.dumps(report.as_json(), indent=1) if args.json else render(report, args))
    sys.exit(exit_code(report, args))


if __name__ == "__main__":
    main()
