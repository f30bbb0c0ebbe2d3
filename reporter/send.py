"""One report over HTTP (reporter.md §4, §6): send the PATCH, classify what came back.

One retry policy only (R8): this layer never retries; every failed attempt comes
back as an Outcome with its real cause, and the caller backs off.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import requests

from .auth import one_line
from .payload import report_body, report_path

TIMEOUT: Tuple[float, float] = (3.0, 10.0)  # §5: connect 3 s, read 10 s
# `Prefer: return=minimal` (RFC 7240): the reporter reads only the status, so our API answers 204
# without building the record's view; a server that ignores it (the reference) answers 200 as before.
HEADERS = {"Content-Type": "application/json", "Accept": "application/json", "Prefer": "return=minimal"}


@dataclass(frozen=True)
class Outcome:
    """Result of one attempt: success, what to log, and whether the token was refused."""

    ok: bool
    level: int
    message: str
    refresh_token: bool = False


def new_session() -> requests.Session:
    """A session that takes nothing from the environment.

    `trust_env = False`: no `REQUESTS_CA_BUNDLE`/`CURL_CA_BUNDLE` (R7), no proxy
    variables and no .netrc credentials can change where or how a node reports.
    """
    session = requests.Session()
    session.trust_env = False
    return session


def send_report(session: requests.Session, endpoint: str, xname: str, bss_token: str, bearer: str,
                ca_bundle: str, timeout: Tuple[float, float] = TIMEOUT) -> Outcome:
    """PATCH the component's actual state once and classify the result."""
    url = endpoint + report_path(xname)
    verify = tls_verify(url, ca_bundle)
    if verify is None:
        return Outcome(False, logging.ERROR, f"CA bundle {ca_bundle} does not exist; cannot verify {url}")
    headers = dict(HEADERS, Authorization=f"Bearer {bearer}")
    body = json.dumps(report_body(xname, bss_token)).encode()
    try:
        # verify is passed on every request: a session-level value would lose to the environment (R7).
        response = session.patch(url, data=body, headers=headers, timeout=timeout, verify=verify,
                                 allow_redirects=False)  # a redirected PATCH could become a GET
    except requests.RequestException as exc:
        return Outcome(False, logging.WARNING, f"Could not report to BOS at {url}: {describe_error(exc)}")
    return classify(response.status_code, response.content, xname)


def tls_verify(url: str, ca_bundle: str) -> Optional[Union[str, bool]]:
    """What requests should verify against: the configured bundle for https; None if it is missing."""
    if not url.lower().startswith("https:"):
        return True
    return ca_bundle if os.path.exists(ca_bundle) else None


def classify(status: int, body: bytes, xname: str) -> Outcome:
    """reporter.md §6, one row per branch."""
    if 200 <= status < 300:
        return Outcome(True, logging.INFO, f"Updated the actual_state record for BOS component '{xname}'.")
    if status == 404:
        return Outcome(False, logging.WARNING, f"BOS has no record of component '{xname}'; nothing to report.")
    if status == 409:
        return Outcome(False, logging.WARNING,
                       f"BOS refused the report for component '{xname}' (409 {problem_text(body)}); will retry.")
    if status in (401, 403):
        return Outcome(False, logging.WARNING,
                       f"BOS refused the bearer token ({status}: {one_line(body)}); fetching a new token.",
                       refresh_token=True)
    return Outcome(False, logging.WARNING, f"BOS answered {status}: {one_line(body)}")


def problem_text(body: bytes) -> str:
    """`title: detail` of a problem+json body, else the body on one line."""
    try:
        problem = json.loads(body)
    except ValueError:
        return one_line(body)
    if not isinstance(problem, dict):
        return one_line(body)
    parts = [str(problem[k]) for k in ("title", "detail") if problem.get(k)]
    return one_line(": ".join(parts).encode()) if parts else one_line(body)


def describe_error(exc: BaseException) -> str:
    """The kind of failure and its innermost cause, without urllib3's 'Max retries exceeded' noise."""
    kind = "connection failed"
    if isinstance(exc, requests.exceptions.SSLError):
        kind = "TLS error"
    elif isinstance(exc, requests.Timeout):
        kind = "timed out"
    elif not isinstance(exc, requests.ConnectionError):
        kind = type(exc).__name__
    return f"{kind}: {innermost(exc)}"


def innermost(exc: BaseException) -> str:
    """Text of the deepest exception in the cause chain (`reason`, args, __cause__, __context__)."""
    seen = set()
    current: BaseException = exc
    while id(current) not in seen:
        seen.add(id(current))
        nested = _nested(current)
        if nested is None:
            break
        current = nested
    return one_line(str(current).encode()) or type(current).__name__


def _nested(exc: BaseException) -> Optional[BaseException]:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        return reason
    if exc.args and isinstance(exc.args[0], BaseException):
        return exc.args[0]
    return exc.__cause__ or exc.__context__
