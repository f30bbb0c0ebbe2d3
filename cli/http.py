"""HTTP to the BOS v2 API: one session with auth, tenant and CA bundle; errors as one line.

Every failure the admin can meet ends up as a `CliError` whose message fits on
one line and whose exit code says what kind of failure it was, so scripts can
tell "BOS said no" from "BOS is not there".
"""

from __future__ import annotations

import html
import re
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

import requests

from . import __version__
from .config import Settings

TENANT_HEADER = "Cray-Tenant-Name"
_TAG = re.compile(r"<[^>]*>")
_HEAD = re.compile(r"<(head|style|script)\b.*?</\1>", re.S | re.I)

# Exit codes (documented in the README and `bos --help`).
EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3
EXIT_FAILED_NODES = 4
EXIT_TIMEOUT = 5
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """An error reported as `bos: error: <message>` with `exit_code`."""

    exit_code = EXIT_API_ERROR

    def __init__(self, message: str, exit_code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CliError):
    """Arguments that make no sense together, found after parsing."""

    exit_code = EXIT_USAGE


class ApiError(CliError):
    """The API answered with an error status (usually an RFC 7807 problem)."""

    def __init__(self, status: int, title: str, detail: str, url: str) -> None:
        self.status, self.title, self.detail, self.url = status, title, detail, url
        text = f"{title}: {detail}" if detail and detail != title else title
        super().__init__(f"{text} (HTTP {status})")


class ConnectError(CliError):
    """No usable HTTP answer: refused, DNS, TLS, timeout."""

    exit_code = EXIT_CONNECT


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _plain_text(resp: requests.Response) -> str:
    """The body as text; gateways (nginx, istio) send HTML error pages, so drop the tags."""
    text = resp.text or ""
    if "html" in resp.headers.get("Content-Type", ""):
        text = html.unescape(_TAG.sub(" ", _HEAD.sub(" ", text)))
    return text


def _hint(status: int, body: Any = None) -> str:
    """What to do about a 401/403; names the missing role when the server says (docs/auth.md)."""
    required = body.get("required_roles") if isinstance(body, dict) else None
    if status == 403 and isinstance(required, list) and required:
        roles = " or ".join(str(r) for r in required)
        return f" (missing role: {roles}; use a token that has it: --token-file / BOS_TOKEN_FILE)"
    if status in (401, 403):
        return " (check --token-file / BOS_TOKEN_FILE)"
    return ""


def error_from_response(resp: requests.Response) -> ApiError:
    """An ApiError from problem+json, or from whatever a gateway sent instead."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("title" in body or "detail" in body):
        title = str(body.get("title") or resp.reason or "Error")
        detail = _one_line(str(body.get("detail") or ""))
        return ApiError(resp.status_code, title, detail + _hint(resp.status_code, body), resp.url)
    reason = resp.reason or "Error"
    snippet = _one_line(_plain_text(resp), 200)
    detail = f"{snippet} from {resp.url}" if snippet else f"from {resp.url}"
    return ApiError(resp.status_code, reason, detail + _hint(resp.status_code), resp.url)


class Client:
    """A thin BOS v2 client: paths are relative to `<root>/v2`."""

    def __init__(self, settings: Settings, http: Optional[requests.Session] = None) -> None:
        self.settings = settings
        self.root = settings.url
        self.http = http or requests.Session()
        self.http.headers["User-Agent"] = f"bos-cli/{__version__}"
        if settings.token:
            self.http.headers["Authorization"] = f"Bearer {settings.token}"
        if settings.tenant:
            self.http.headers[TENANT_HEADER] = settings.tenant
        if settings.ca_bundle:
            self.http.verify = settings.ca_bundle

    def url(self, path: str) -> str:
        return f"{self.root}/v2{path}"

    def request(self, method: str, path: str, *, params: Optional[Mapping[str, Any]] = None,
                body: Any = None, accept: Sequence[int] = ()) -> Any:
        """JSON of a successful answer (None for an empty body); raises CliError otherwise.

        `accept` lists error statuses whose JSON body is a normal answer
        (healthz reports a sick database as 503 with a regular body).
        """
        url = self.url(path)
        try:
            # verify per request: a session-level value loses to REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE (as R7)
            verify: Any = self.settings.ca_bundle or True
            resp = self.http.request(method, url, params=params, json=body, timeout=self.settings.timeout,
                                     verify=verify)
        except requests.exceptions.SSLError as exc:
            raise ConnectError(f"TLS error talking to {url}: {_reason(exc)} "
                               "(use --ca-bundle / BOS_CA_BUNDLE for a private CA)") from exc
        except requests.exceptions.Timeout as exc:
            raise ConnectError(f"no answer from {url} within {self.settings.timeout:g}s") from exc
        except requests.exceptions.RequestException as exc:
            raise ConnectError(f"cannot connect to BOS at {url}: {_reason(exc)}") from exc
        if resp.status_code >= 400 and resp.status_code not in accept:
            raise error_from_response(resp)
        return _json(resp, url)

    def get(self, path: str, params: Optional[Mapping[str, Any]] = None, **kw: Any) -> Any:
        return self.request("GET", path, params=params, **kw)

    def post(self, path: str, body: Any = None, params: Optional[Mapping[str, Any]] = None) -> Any:
        return self.request("POST", path, params=params, body=body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body=body)

    def patch(self, path: str, body: Any, params: Optional[Mapping[str, Any]] = None) -> Any:
        return self.request("PATCH", path, params=params, body=body)

    def delete(self, path: str, params: Optional[Mapping[str, Any]] = None) -> Any:
        return self.request("DELETE", path, params=params)

    def components(self, params: Mapping[str, Any], page_size: int = 1000) -> List[Dict[str, Any]]:
        """Every component matching `params`, fetched in pages (api.md §3.3.1)."""
        return list(self.iter_components(params, page_size))

    def iter_components(self, params: Mapping[str, Any], page_size: int = 1000) -> Iterator[Dict[str, Any]]:
        query = dict(params)
        while True:
            if page_size:
                query["page_size"] = page_size
            page = self.get("/components", query)
            yield from page
            # A server that ignores paging returns everything at once: stop there too.
            if not page_size or len(page) != page_size:
                return
            query["start_after_id"] = page[-1]["id"]


def _reason(exc: Exception) -> str:
    """The innermost useful message of a requests/urllib3 exception chain."""
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "No route to host",
                   "Temporary failure in name resolution", "certificate verify failed",
                   "Connection reset by peer", "Network is unreachable", "nodename nor servname"):
        if marker in text:
            return marker
    return _one_line(text, 200)


def _json(resp: requests.Response, url: str) -> Any:
    if resp.status_code == 204 or not resp.content:
        return None
    try:
        return resp.json()
    except ValueError as exc:
        snippet = _one_line(resp.text, 120)
        raise CliError(f"{url} did not answer with JSON (HTTP {resp.status_code}): {snippet}") from exc
