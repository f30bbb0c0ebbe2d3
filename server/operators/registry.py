"""The operators by name (the ten of operators.md plus the v1 agent, v1.md §1) (`bos-operators --only NAME[,NAME]`)."""

from __future__ import annotations

from typing import Callable, Dict, List, Sequence

from .actual_state_cleanup import ActualStateCleanupOperator
from .configuration import ConfigurationOperator
from .discovery import DiscoveryOperator
from .framework import Operator
from .power_off_forceful import PowerOffForcefulOperator
from .power_off_graceful import PowerOffGracefulOperator
from .power_on import PowerOnOperator
from .session_cleanup import SessionCleanupOperator
from .session_completion import SessionCompletionOperator
from .session_setup import SessionSetupOperator
from .status import StatusOperator
from .v1_agent import V1AgentOperator

OPERATORS: Dict[str, Callable[[], Operator]] = {
    cls.name: cls for cls in (
        ActualStateCleanupOperator, ConfigurationOperator, DiscoveryOperator, PowerOffForcefulOperator,
        PowerOffGracefulOperator, PowerOnOperator, SessionCleanupOperator, SessionCompletionOperator,
        SessionSetupOperator, StatusOperator, V1AgentOperator)
}


def build(names: Sequence[str] = ()) -> List[Operator]:
    """Fresh operator instances; all ten when `names` is empty. KeyError names an unknown one."""
    wanted = list(names) or sorted(OPERATORS)
    unknown = [n for n in wanted if n not in OPERATORS]
    if unknown:
        raise KeyError(", ".join(unknown))
    return link([OPERATORS[n]() for n in dict.fromkeys(wanted)])


def link(operators: List[Operator]) -> List[Operator]:
    """Operators of one process that act on each other's work directly, when both run in it:
    session setup has the status operator look at each batch it enables at once, and the status
    operator hands what its write makes `power_on_pending` or `power_off_pending` to power-on or
    power-off-graceful under its own claim (operators.md §3, extensions "looked at once enabled"
    and "handed over at once")."""
    by_name = {op.name: op for op in operators}
    status = by_name.get(StatusOperator.name)
    if isinstance(status, StatusOperator):
        for cls in (PowerOnOperator, PowerOffGracefulOperator):
            power = by_name.get(cls.name)
            if isinstance(power, cls):
                status.power[cls.name] = power
        setup = by_name.get(SessionSetupOperator.name)
        if isinstance(setup, SessionSetupOperator):
            setup.status = status
    return operators
