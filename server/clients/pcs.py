"""PCS client (services.md §3): power status and fire-and-forget transitions."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Sequence

from .rest import JsonClient

CHUNK = 5000
TASK_DEADLINE_MINUTES = 1


def power_value(entry: Dict[str, Any]) -> str:
    """BOS's reading of one entry: the error text if any, else lower-cased powerState, else ""."""
    error = entry.get("error") or ""
    if error:
        return str(error)
    return str(entry.get("powerState") or "").lower()


class PcsClient:
    def __init__(self, http: JsonClient, chunk: int = CHUNK) -> None:
        self.http = http
        self.chunk = chunk

    async def power_status(self, ids: Sequence[str]) -> Dict[str, str]:
        """xname -> power value (operators.md §3.1 step 3); entries without a value are omitted."""
        out: Dict[str, str] = {}
        ids = list(ids)
        for start in range(0, len(ids), self.chunk):
            body = await self.http.post("/power-status", {"xname": ids[start:start + self.chunk]})
            entries = body.get("status") if isinstance(body, dict) else None
            for entry in entries or []:
                if not isinstance(entry, dict) or not entry.get("xname"):
                    continue
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
