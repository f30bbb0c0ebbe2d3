"""Node identity (reporter.md §3): `NODE_IDENTITY`, else `xname=`; nothing else.

Pure, so the simulator can give its simulated nodes exactly the agent's rule.
"""

from __future__ import annotations

from typing import Mapping, Optional

NO_IDENTITY_MESSAGE = "Unable to determine node identity: set NODE_IDENTITY or boot with xname=<xname>"


def node_identity(params: Mapping[str, str], env: Mapping[str, str]) -> Optional[str]:
    """The xname this node reports as, or None when it has none (R4: exit 78).

    `env` is the environment (or the agent's settings, which overlay the config
    file with the environment). No hostname or file fallback: a wrong identity
    would overwrite another node's record, a missing one is only a config error.
    """
    from_env = (env.get("NODE_IDENTITY") or "").strip()
    if from_env:
        return from_env
    return (params.get("xname") or "").strip() or None
