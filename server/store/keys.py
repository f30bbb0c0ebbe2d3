"""Every Redis key name, in one place (STYLE: nowhere else spells a key).

Records are JSON strings. Indexes are sorted sets whose members all score 0,
so ZRANGE BYLEX gives ordered paging in O(log N + page) (D1).
"""

from __future__ import annotations

import hashlib
from typing import Optional, Tuple

PREFIX = "bos:"
EVENTS_CHANNEL = PREFIX + "events"
OPTIONS = PREFIX + "options"

# -- components --
COMPONENT_IDS = PREFIX + "idx:comp:all"
COMPONENT_ENABLED = PREFIX + "idx:comp:enabled"
COMPONENT_ERRORED = PREFIX + "idx:comp:errored"
# Score index: components with actual boot artifacts, scored by actual_state.last_updated (0 if absent)
COMPONENT_ACTUAL_STAMP = PREFIX + "idx:comp:actual-stamp"
# Score index: enabled components waiting on a power-off call (component_query.POWER_OFF_CALLED),
# scored by last_action.last_updated (0 if absent): power-off-forceful's due ones are a score range
COMPONENT_POWER_OFF_STAMP = PREFIX + "idx:comp:power-off-stamp"
# Stream of the IDs of applied component writes, kept about a minute (store/cas.py: the write feed)
COMPONENT_WRITES = PREFIX + "feed:comp"


def component(component_id: str) -> str:
    return f"{PREFIX}comp:{component_id}"


def component_history(component_id: str) -> str:
    """The capped, packed string of a component's changes (extension, store/history.py)."""
    return f"{PREFIX}hist:{component_id}"


def _value_key(kind: str, value: str) -> str:
    # Values are user strings (session names, overrides up to 64 KiB): hash long ones.
    if len(value) > 200:
        value = "sha1:" + hashlib.sha1(value.encode()).hexdigest()
    return f"{PREFIX}idx:comp:{kind}:{value}"


def by_session(name: str) -> str:
    return _value_key("session", name)


def by_staged_session(name: str) -> str:
    return _value_key("staged", name)


def by_phase(phase: str) -> str:
    return _value_key("phase", phase)


def by_status(status: str) -> str:
    return _value_key("status", status)


def artifacts_blob(digest: str) -> str:
    return f"{PREFIX}art:{digest}"


ARTIFACT_BLOBS = PREFIX + "idx:art"  # blob key -> last time a write referenced it


# -- sessions, templates, saved statuses: keyed by (tenant or "", name) --

def scoped_member(tenant: Optional[str], name: str) -> str:
    """Index member for (tenant, name): sorts by tenant then name (D20)."""
    return f"{tenant or ''}\x00{name}"


def split_member(member: str) -> Tuple[Optional[str], str]:
    tenant, _, name = member.partition("\x00")
    return (tenant or None, name)


def session(tenant: Optional[str], name: str) -> str:
    return f"{PREFIX}session:{scoped_member(tenant, name)}"


def session_status(tenant: Optional[str], name: str) -> str:
    return f"{PREFIX}sstatus:{scoped_member(tenant, name)}"


def template(tenant: Optional[str], name: str) -> str:
    return f"{PREFIX}template:{scoped_member(tenant, name)}"


SESSIONS = PREFIX + "idx:sessions"
TEMPLATES = PREFIX + "idx:templates"


def sessions_by_status(status: str) -> str:
    return f"{PREFIX}idx:sessions:status:{status}"


def sessions_by_name(name: str) -> str:
    """Every tenant's session called `name` (D25 look-ups)."""
    return f"{PREFIX}idx:sessions:name:{name}"


def sessions_by_tenant(tenant: Optional[str]) -> str:
    return f"{PREFIX}idx:sessions:tenant:{tenant or ''}"


def templates_by_tenant(tenant: Optional[str]) -> str:
    return f"{PREFIX}idx:templates:tenant:{tenant or ''}"


# -- BSS referral tokens (D4) --
TOKENS_BY_TIME = PREFIX + "idx:tokens"
TOKEN_SWEEP_LOCK = PREFIX + "lock:token-sweep"
HISTORY_SWEEP_LOCK = PREFIX + "lock:history-sweep"  # quiet histories (store/history.py)
HISTORY_CLOCK = PREFIX + "clock:history"  # the last history entry id given (store/cas.py)


def token(value: str) -> str:
    return f"{PREFIX}token:{value}"


# -- session control (extensions, docs/deviations.md "Session control") --
# Operator actions in progress: token -> expiry time. A session stop waits for the
# actions that were in progress when it disabled its components (server/session_stop.py).
ACTING = PREFIX + "idx:acting"


def session_cleanup(tenant: Optional[str], name: str) -> str:
    """What stopping a session cleaned up, per node (POST /v2/sessions/{name}/stop)."""
    return f"{PREFIX}scleanup:{scoped_member(tenant, name)}"


def wave_admitted(session_name: str) -> str:
    """Nodes of a session with `max_in_flight` that were given a slot (scored 0)."""
    if len(session_name) > 200:
        session_name = "sha1:" + hashlib.sha1(session_name.encode()).hexdigest()
    return f"{PREFIX}wave:admitted:{session_name}"


# -- operator coordination across replicas (docs/ha.md) --
CLAIM_TOKENS = PREFIX + "claims:token"  # INCR: the fencing token of each claim


def component_lease(component_id: str) -> str:
    """Who may read-decide-act on a component right now (value: the holder's fencing token)."""
    return f"{PREFIX}lease:comp:{component_id}"


def claim_alive(token: str) -> str:
    """Present while the holder of fencing token `token` runs (renewed by its heartbeat and fence
    checks): a component lease whose token has none left may be taken over (docs/ha.md)."""
    return f"{PREFIX}lease:token:{token}"


def decision(operator: str, component_id: str) -> str:
    """The power decision an operator is issuing for a component (token and state version)."""
    return f"{PREFIX}decision:{operator}:{component_id}"


def session_lease(tenant: Optional[str], name: str) -> str:
    """Which replica is setting up a pending session right now (value: its fencing token)."""
    return f"{PREFIX}lease:session:{scoped_member(tenant, name)}"


def session_setup_begun(tenant: Optional[str], name: str) -> str:
    """Present once a replica began writing a pending session's components: a setup redone after
    it stopped half-way leaves alone what the first already wrote (operators/session_setup.py)."""
    return f"{PREFIX}setup:begun:{scoped_member(tenant, name)}"


# -- BOS v1 compatibility layer (v1.md): sessions and their status trees --
# Boot-set and phase names never contain NUL, so "\x00" joins the parts of a key.
V1_SESSIONS = PREFIX + "v1:idx:sessions"  # every v1 session ID (lexical order = listing order)
V1_ACTIVE = PREFIX + "v1:idx:active"  # v1 sessions the agent still drives
V1_AGENT_LOCK = PREFIX + "v1:lock:agent"  # one agent pass at a time across operator replicas
V1_HEALTH_PROBE = PREFIX + "v1:healthz"  # written then read by GET /v1/healthz


def v1_session(session_id: str) -> str:
    return f"{PREFIX}v1:session:{session_id}"


def v1_status(session_id: str) -> str:
    """Hash: start_time, stop_time and the extension fields of the session-status metadata."""
    return f"{PREFIX}v1:status:{session_id}"


def v1_status_boot_sets(session_id: str) -> str:
    """List: the boot-set names of the session status, in creation order (V5)."""
    return f"{PREFIX}v1:status-bs:{session_id}"


def v1_boot_set(session_id: str, boot_set: str) -> str:
    """Hash: layout (phases and category order, JSON) and every start/stop time of the boot set."""
    return f"{PREFIX}v1:bs:{session_id}\x00{boot_set}"


def v1_category(session_id: str, boot_set: str, phase: str, category: str) -> str:
    """Sorted set (score 0): the nodes of one category of one phase."""
    return f"{PREFIX}v1:cat:{session_id}\x00{boot_set}\x00{phase}\x00{category}"


def v1_errors(session_id: str, boot_set: str, phase: str) -> str:
    """Sorted set (score 0) of `message\\x00node`: a phase's `errors` map, merged by union."""
    return f"{PREFIX}v1:err:{session_id}\x00{boot_set}\x00{phase}"


def v1_agent(session_id: str) -> str:
    """Hash: the agent's progress through a session (stage, attempts, per-node boot set)."""
    return f"{PREFIX}v1:agent:{session_id}"


def v1_in_flight(session_id: str) -> str:
    """Sorted set (score 0) of `boot_set\\x00node` the engine still drives for the session."""
    return f"{PREFIX}v1:flight:{session_id}"


def cas_receipt(token: str) -> str:
    """Outcome of one compare-and-set call, kept briefly so a replay can return it (cas.py)."""
    return f"{PREFIX}cas-receipt:{token}"
