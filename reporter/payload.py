"""What the reporter sends (reporter.md §1): one PATCH with the referral token, nothing else.

Pure, so the simulator sends byte-for-byte what a real node sends.
"""

from __future__ import annotations

from typing import Any, Dict
from urllib.parse import quote


def report_path(xname: str) -> str:
    """Path of the component below the API base, e.g. `/components/x3000c0s19b1n0`.

    The xname is percent-encoded so a malformed identity can never address
    another resource (`../options`); a well-formed xname is unchanged.
    """
    return "/components/" + quote(xname, safe="")


def report_body(xname: str, token: str) -> Dict[str, Any]:
    """The PATCH body: `id` (ignored by the server, sent for the reference BOS) and the token."""
    return {"id": xname, "actual_state": {"bss_token": token}}
