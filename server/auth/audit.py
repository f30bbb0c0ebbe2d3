"""The audit trail: with auth on, one log line per write, naming who made it and as what.

The line is JSON after the word `audit`, so every value (subject, path, tenant)
is escaped: a token subject with a newline cannot forge a second line. The
logger keeps level INFO whatever `logging_level` says (options only move the
root logger), so the trail does not vanish when an admin quiets the logs.
"""

from __future__ import annotations

import json
import logging
from typing import Optional

from aiohttp import web

from .principal import Principal

AUDIT = logging.getLogger("bos_server.audit")
AUDIT.setLevel(logging.INFO)
READS = ("GET", "HEAD", "OPTIONS")
MAX_QUERY = 256


def is_write(request: web.Request) -> bool:
    return request.method not in READS


def record(request: web.Request, status: int, principal: Optional[Principal], role: Optional[str],
           reason: Optional[str] = None) -> None:
    """One line for a write (allowed or not); reads are not audited."""
    if not is_write(request):
        return
    entry = {"method": request.method, "path": request.path, "status": status,
             "subject": principal.subject if principal else None, "role": role,
             "tenant": principal.tenant if principal and role == "tenant-admin" else None}
    if request.query_string:
        entry["query"] = request.query_string[:MAX_QUERY]
    if reason:
        entry["reason"] = reason
    AUDIT.info("audit %s", json.dumps(entry, ensure_ascii=True, separators=(",", ":")))
