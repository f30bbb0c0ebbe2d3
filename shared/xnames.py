"""Xname helpers: canonical form (api.md §4.1 step 2.8) and syntactic validity."""

from __future__ import annotations

import re

_NODE_SEQUENCE = re.compile(r"x(\d+)c(\d+)s(\d+)b(\d+)n(\d+)")
# Cabinet, chassis, slot, BMC, node and the deeper component kinds HSM knows; enough for
# "is this a syntactically valid xname" as PCS checks it.
_XNAME = re.compile(r"^(s0|x\d{1,4}([cdm]\d{1,2}([srbwf]\d{1,2}([bej]\d{1,3}(n\d{1,2}|i\d{1,2}|b\d{1,2})?)?)?)?"
                    r"(c\d{1,2}s\d{1,2}b\d{1,2}n\d{1,2})?)$")


def canonical(xname: str) -> str:
    """Lower-case and strip leading zeros from every number of an `x<d>c<d>s<d>b<d>n<d>` run."""
    def strip(match: "re.Match[str]") -> str:
        nums = [str(int(group)) for group in match.groups()]
        return "x{}c{}s{}b{}n{}".format(*nums)
    return _NODE_SEQUENCE.sub(strip, xname.lower())


def is_valid_xname(text: str) -> bool:
    """Syntactic xname validity, as PCS judges it (services.md §3.1)."""
    return bool(_XNAME.match(text))
