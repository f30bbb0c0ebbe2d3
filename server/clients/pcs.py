"""PCS client (services.md §3): power status and fire-and-forget transitions."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Sequence

from .rest import JsonClient
from .slim import Slim, slim_decoder, slim_items

CHUNK = 5000
# What BOS reads of a power-status entry (`power_value`); the rest of each (its management state,
# supported transitions, last update) is skipped unread (slim.py).
STATUS_FIELDS = ("xname", "powerState", "error")
TASK_DEADLINE_MINUTES = 1


def power_value(entry: Dict[str, Any]) -> str:
    """BOS's reading of one entry: the error text if any, else lower-cased powerState, else ""."""
    error = entry.get("error") or ""
    if error:
        return str(error)
    return str(entry.get("powerState") or "").lower()


def _entries(body: Any) -> List[Dict[str, Any]]:
    """The answer's entries that name a node: `STATUS_FIELDS` of each, or (an answer of another
    shape, read in full) each entry that is an object. The status operator asks PCS about every
    record it re-reads; parsing whole entries was a twentieth of the operators' CPU in a
    100,000-node boot (issue 13)."""
    if isinstance(body, Slim):
        return slim_items(body, "status", "xname")
    entries = body.get("status") if isinstance(body, dict) else None
    return [e for e in entries or [] if isinstance(e, dict) and e.get("xname")]


class PcsClient:
    def __init__(self, http: JsonClient, chunk: int = CHUNK) -> None:
        self.http = http
        self.chunk = chunk

    async def power_status(self, ids: Sequence[str]) -> Dict[str, str]:
        """xname -> power value (operators.md §3.1 step 3); entries without a value are omitted."""
        out: Dict[str, str] = {}
        ids = list(ids)
        decoder = slim_decoder("status", STATUS_FIELDS)
        for start in range(0, len(ids), self.chunk):
            body = await self.http.post("/power-status", {"xname": ids[start:start + self.chunk]}, decoder=decoder,
                                        reads=True)
            for entry in _entries(body):
                value = power_value(entry)
                if value:
                    out[entry["xname"]] = value
        return out

    def batches(self, ids: Sequence[str]) -> List[Sequence[str]]:
        """Request-sized runs of IDs, so callers can attribute a failure to its batch."""
        return [ids[i:i + self.chunk] for i in range(0, len(ids), self.chunk)]

    async def transition(self, operation: str, ids: Iterable[str]) -> str:
        """One `POST /transitions` for `ids` (at most `chunk`); returns the transition ID.

        Fire-and-forget: BOS never follows the transition (services.md §3.2).
        """
        ids = list(ids)
        if len(ids) > self.chunk:
            raise ValueError(f"{len(ids)} IDs exceed the PCS request size of {self.chunk}")
        body = {"operation": operation, "taskDeadlineMinutes": TASK_DEADLINE_MINUTES,
                "location": [{"xname": xname} for xname in ids]}
        reply = await self.http.post("/transitions", body)
        return str(reply.get("transitionID", "")) if isinstance(reply, dict) else ""
