"""BSS (services.md §4): boot parameters per host, referral tokens, iPXE boot scripts.

A PUT stores one immutable `BssEntry` shared by every host it names, so a
1,000-host PUT costs one object, and a node that snapshots its entry at power-on
keeps booting what was programmed at that moment even if BSS changes later.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Set

from aiohttp import web

from .determinism import seeded_uuid
from .httputil import SimError, json_body

BASE = "/boot/v1"


@dataclass(frozen=True, slots=True)
class BssEntry:
    params: str
    kernel: str
    initrd: str
    token: str


class BssStore:
    def __init__(self, seed: int, nid_of: Callable[[str], Optional[int]],
                 xname_of_nid: Callable[[int], Optional[str]]) -> None:
        self.seed = seed
        self.hosts: Dict[str, BssEntry] = {}
        self.nid_of = nid_of
        self.xname_of_nid = xname_of_nid
        self._tokens = itertools.count(1)
        self._join_tokens = itertools.count(1)
        # Filled in when the ports are known (main.py).
        self.s3_http_url = "http://rgw-vip.nmn"
        self.metadata_url = "http://10.92.100.81:8888"
        self.base_url = f"http://cray-bss{BASE}"

    def put(self, hosts: Iterable[str], params: str, kernel: str, initrd: str) -> str:
        """Replace the parameters of `hosts`; one new referral token for all of them."""
        token = seeded_uuid(self.seed, "bss-token", next(self._tokens))
        entry = BssEntry(params, kernel, initrd, token)
        for host in hosts:
            self.hosts[host] = entry
        return token

    def delete(self, hosts: Iterable[str]) -> None:
        for host in hosts:
            self.hosts.pop(host, None)

    def cmdline(self, xname: str, entry: BssEntry, join_token: str) -> str:
        return render_cmdline(entry, xname, self.nid_of(xname), join_token, self.metadata_url)

    def script(self, xname: str, entry: BssEntry, join_token: str) -> str:
        return render_script(entry, self.cmdline(xname, entry, join_token), self.s3_http_url,
                             f"{self.base_url}/bootscript?name={xname}&retry=1")

    def fresh_join_token(self) -> str:
        return seeded_uuid(self.seed, "spire-join", next(self._join_tokens))


def _keys(line: str) -> Set[str]:
    """The keys of the line's `key=value` words: a word starts with `key=` exactly when its text
    before the first `=` is `key` (one split per rendering: the simulator renders one per report)."""
    return {word.partition("=")[0] for word in line.split() if "=" in word}


def _append(line: str, word: str) -> str:
    return f"{line} {word}" if line else word


_INITRD_WORD = re.compile(r"(^|\s)initrd\S*")


@dataclass(frozen=True, slots=True)
class _Rendering:
    """What render_cmdline makes of one stored entry before any node's own values: the keys the
    params give (steps 2-5 append only the others) and the params with step 8's initrd word
    already removed. Every node sharing the entry shares it (render_cmdline runs once per node
    report; the split and the regular expression per report were a tenth of the simulator's CPU
    in a 30,000-node boot, issue 13)."""

    given: frozenset
    body: str  # params, less the first initrd word when the entry has an initrd (step 8)
    spire: bool  # the params hold the join-token placeholder (step 6)
    reported: Optional[Dict[str, str]]  # the REPORTER_KEYS the body gives (_reported), or None


_RENDERINGS: Dict[BssEntry, _Rendering] = {}
_RENDERINGS_MAX = 4096
SPIRE_PLACEHOLDER = "${SPIRE_JOIN_TOKEN}"


def _rendering(entry: BssEntry) -> _Rendering:
    found = _RENDERINGS.get(entry)
    if found is None:
        if len(_RENDERINGS) >= _RENDERINGS_MAX:
            _RENDERINGS.clear()
        body = _INITRD_WORD.sub("", entry.params, count=1) if entry.initrd else entry.params
        found = _RENDERINGS[entry] = _Rendering(frozenset(_keys(entry.params)), body,
                                                 SPIRE_PLACEHOLDER in entry.params, _reported(entry, body))
    return found


# The parameters a node's reporter reads from its command line: identity, referral token and
# update frequency (reporter.md §2-§4).
REPORTER_KEYS = ("xname", "bss_referral_token", "bos_update_frequency")
# Characters the kernel's split treats differently from `str.split()` (bos_shared.cmdline: quotes,
# NUL, the separators 0x1c-0x1f): a text without them (and ASCII) splits as `str.split()` splits it.
_NOT_PLAIN = ('"', "\0", "\x1c", "\x1d", "\x1e", "\x1f")


def _plain(text: str) -> bool:
    return text.isascii() and not any(char in text for char in _NOT_PLAIN)


def _one_word(text: str) -> bool:
    """Whether `text` is one word to `str.split()` and to the kernel alike (printable ASCII, no
    space, no quote), so appending it cannot add, split or join other words."""
    return text.isascii() and text.isprintable() and " " not in text and '"' not in text


def _reported(entry: BssEntry, body: str) -> Optional[Dict[str, str]]:
    """The REPORTER_KEYS that `parse_cmdline` finds in the entry's body (first occurrence wins);
    None when the rendered line has to be parsed in full to know them: a body the plain split
    would not split as the kernel does (a quote can join the words appended after it), a value
    holding the join-token placeholder (node-specific), or a referral token that is not one plain
    word. A key holding the placeholder is never one of them, before or after step 6 (a UUID has
    hyphens)."""
    if not _plain(body) or (entry.token and (not _one_word(entry.token) or SPIRE_PLACEHOLDER in entry.token)):
        return None
    found: Dict[str, str] = {}
    for word in body.split():
        key, sep, value = word.partition("=")
        if sep and key in REPORTER_KEYS and key not in found:
            if SPIRE_PLACEHOLDER in value:
                return None
            found[key] = value
    return found


def reporter_params(entry: BssEntry, xname: str, metadata_url: str) -> Optional[Dict[str, str]]:
    """`parse_cmdline(render_cmdline(entry, xname, nid, join_token, metadata_url))` restricted to
    REPORTER_KEYS, for any nid and join token, without rendering or parsing the line: the body's
    values (`_reported`, once per stored entry), then the xname and referral token steps 2 and 4
    append after it when the params give none. Steps 3, 5, 6 and 8 add only other keys as long as
    the xname and the metadata URL are single plain words without the placeholder. None when
    that does not hold: the caller renders and parses (every simulated report reads these three
    values; rendering and parsing the line for them was a twentieth of the simulator's CPU in a
    100,000-node boot, issue 13)."""
    rendering = _rendering(entry)
    found = rendering.reported
    if found is None or not (xname.isascii() and xname.isalnum()):
        return None
    if "ds" not in rendering.given and not _one_word(metadata_url):
        return None
    params = dict(found)
    if "xname" not in rendering.given:
        params["xname"] = xname
    if entry.token and "bss_referral_token" not in rendering.given:
        params["bss_referral_token"] = entry.token
    return params


def render_cmdline(entry: BssEntry, xname: str, nid: Optional[int], join_token: str, metadata_url: str) -> str:
    """The kernel command line BSS builds from stored params (services.md §4.3 steps 1-6, 8).

    Step 8 (the params' first `initrd...` word dropped, `initrd=initrd` put first) is applied to
    the params before steps 2-6 append and substitute: the same line, since the words appended
    (xname, nid, token, ds with the metadata URL) never start with `initrd`, and neither they nor
    the join token hold whitespace, so no word boundary moves (tests/sim/test_bss.py compares
    with the steps in their written order)."""
    rendering = _rendering(entry)
    given = rendering.given  # the words appended below never start with a later step's key
    line = rendering.body                                             # 1 (and 8)
    if "xname" not in given:                                          # 2
        line = _append(line, f"xname={xname}")
    if nid is not None and "nid" not in given:                        # 3
        line = _append(line, f"nid={nid}")
    if entry.token and "bss_referral_token" not in given:            # 4
        line = _append(line, f"bss_referral_token={entry.token}")
    if "ds" not in given:                                             # 5
        line = _append(line, f"ds=nocloud-net;s={metadata_url}/")
    if rendering.spire:                                               # 6
        line = line.replace(SPIRE_PLACEHOLDER, join_token)
    # 7 applies to the artifact URLs (render_script); parameters such as
    # root=sbps-s3:s3://... keep their s3:// form (reporter.md §2.1 example).
    if entry.initrd:                                                  # 8
        line = "initrd=initrd " + line.strip()
    return line


def http_url(url: str, s3_http_url: str) -> str:
    """`s3://bucket/key` as a downloadable URL on the simulated S3 endpoint (step 7)."""
    if url.startswith("s3://"):
        return f"{s3_http_url.rstrip('/')}/{url[len('s3://'):]}"
    return url


def render_script(entry: BssEntry, cmdline: str, s3_http_url: str, retry_url: str) -> str:
    """The iPXE script of services.md §4.3."""
    lines = ["#!ipxe",
             f"kernel --name kernel {http_url(entry.kernel, s3_http_url)} {cmdline} || goto boot_retry"]
    if entry.initrd:
        lines.append(f"initrd --name initrd {http_url(entry.initrd, s3_http_url)} || goto boot_retry")
    lines += ["imgstat || echo Could not show image information.",
              "boot || goto boot_retry",
              ":boot_retry",
              "sleep 30",
              f"chain {retry_url}"]
    return "\n".join(lines) + "\n"


def cmdline_of_script(script: str) -> str:
    """A booted node's /proc/cmdline: the kernel line after the URL, before ` || goto boot_retry`."""
    for line in script.splitlines():
        if line.startswith("kernel "):
            rest = line.split(" ", 4)[4] if line.count(" ") >= 4 else ""
            return rest.split(" || goto boot_retry", 1)[0]
    return ""


# --------------------------------------------------------------------------- HTTP

def make_routes(store: BssStore) -> List[web.RouteDef]:
    async def put_params(request: web.Request) -> web.Response:
        body = await json_body(request)
        hosts = _hosts(body)
        token = store.put(hosts, _text(body, "params"), _text(body, "kernel"), _text(body, "initrd"))
        return web.Response(status=200, body=b"", headers={"Content-Type": "application/json; charset=UTF-8",
                                                            "BSS-Referral-Token": token})

    async def get_params(request: web.Request) -> web.Response:
        names = _names(request)
        if names is None:
            items = [(host, entry) for host, entry in sorted(store.hosts.items())]
        else:
            items = [(name, store.hosts[name]) for name in names if name in store.hosts]
            if not items:
                raise SimError(404, f"Cannot find host(s) {','.join(names)}")
        return web.json_response([_describe(host, entry) for host, entry in items])

    async def delete_params(request: web.Request) -> web.Response:
        body = await json_body(request)
        store.delete(_hosts(body))
        return web.Response(status=200)

    async def get_script(request: web.Request) -> web.Response:
        xname = _script_host(request, store)
        entry = store.hosts.get(xname)
        if entry is None or not entry.kernel:
            raise SimError(404, f"No boot parameters with a kernel for {xname}")
        script = store.script(xname, entry, store.fresh_join_token())
        return web.Response(text=script, content_type="text/plain")

    return [web.put(f"{BASE}/bootparameters", put_params),
            web.post(f"{BASE}/bootparameters", put_params),
            web.get(f"{BASE}/bootparameters", get_params),
            web.delete(f"{BASE}/bootparameters", delete_params),
            web.get(f"{BASE}/bootscript", get_script)]


def _hosts(body: object) -> List[str]:
    if not isinstance(body, dict):
        raise SimError(400, "The request body must be a JSON object")
    hosts = body.get("hosts")
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) and h for h in hosts):
        raise SimError(400, "Nothing to store: 'hosts' must be a non-empty list of names")
    return hosts


def _text(body: dict, key: str) -> str:
    value = body.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SimError(400, f"'{key}' must be a string")
    return value


def _names(request: web.Request) -> Optional[List[str]]:
    values = request.query.getall("name", [])
    names = [name for value in values for name in value.split(",") if name]
    return names or None


def _script_host(request: web.Request, store: BssStore) -> str:
    if request.query.get("name"):
        return request.query["name"]
    nid = request.query.get("nid", "")
    if nid.isdigit():
        xname = store.xname_of_nid(int(nid))
        if xname:
            return xname
        raise SimError(404, f"Unknown nid {nid}")
    raise SimError(400, "Need name= or nid=")


def _describe(host: str, entry: BssEntry) -> dict:
    return {"hosts": [host], "params": entry.params, "kernel": entry.kernel, "initrd": entry.initrd,
            "cloud-init": {}}
