"""`bos sessions watch` and `create --watch` against the real API.

No operators run here: a driver thread plays their part through the same API
calls they make (session PATCH, component writes, the status snapshot POST),
so the watcher sees exactly what it would see on a live system. The
end-to-end run against the simulator and the real operators is in test_e2e.py.
"""

from __future__ import annotations

import io
import time
from typing import Callable, Iterator, List

import pytest

from bos_cli import watch
from bos_cli.summary import count
from tests.support.client import Api

from .conftest import NODES, Runner, put_template

Step = Callable[[Api, str], None]


def running(api: Api, name: str) -> None:
    assert api.patch(f"/v2/sessions/{name}", json={"status": {"status": "running"},
                                                   "components": ",".join(NODES)}).status_code == 200
    records = [{"id": n, "session": name, "enabled": True, "last_action": {"action": "powering_off_gracefully"},
                "status": {"phase": "powering_off"}} for n in NODES]
    assert api.put("/v2/components", json=records).status_code == 200
    # What the status operator does on its next pass: lift the on_hold the server set.
    api.patch("/v2/components", json={"patch": {"status": {"status_override": ""}}, "filters": {"session": name}})


def node_state(node: str, **fields: object) -> Step:
    def step(api: Api, name: str) -> None:
        assert api.patch(f"/v2/components/{node}", json=fields).status_code == 200
    return step


def stable(node: str) -> Step:
    return node_state(node, enabled=False, status={"phase": ""})


def failed(node: str, error: str) -> Step:
    return node_state(node, enabled=False, error=error, status={"phase": "", "status_override": "failed"})


def complete(error: str = "") -> Step:
    def step(api: Api, name: str) -> None:
        status = {"status": "complete", "end_time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())}
        if error:
            status["error"] = error
        assert api.patch(f"/v2/sessions/{name}", json={"status": status}).status_code == 200
        assert api.post(f"/v2/sessions/{name}/status").status_code == 200
    return step


def stage_all(api: Api, name: str) -> None:
    api.patch(f"/v2/sessions/{name}", json={"status": {"status": "running"}, "components": ",".join(NODES)})
    api.put("/v2/components", json=[{"id": n, "staged_state": {"session": name}} for n in NODES])


class Driver:
    """Plays the operators in lockstep with the watcher: where the watcher would sleep
    between two polls, the next step is applied instead. Each state is therefore seen by
    exactly one poll, however loaded the machine (no wall-clock timing)."""

    def __init__(self, api: Api, name: str, steps: List[Step], monkeypatch: pytest.MonkeyPatch) -> None:
        self.api, self.name, self.steps = api, name, list(steps)
        monkeypatch.setattr(watch.time, "sleep", self._next_step)

    def _next_step(self, _seconds: float) -> None:
        if self.steps:
            self.steps.pop(0)(self.api, self.name)

    def join(self) -> None:
        assert not self.steps, f"the watcher stopped before these steps: {self.steps}"


@pytest.fixture
def session(api: Api) -> Iterator[str]:
    put_template(api, "compute")
    assert api.post("/v2/sessions", json={"name": "s1", "template_name": "compute",
                                          "operation": "shutdown"}).status_code == 201
    yield "s1"


def test_watch_follows_to_the_end_and_fails_when_a_node_failed(bos: Runner, api: Api, session: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    driver = Driver(api, session, [running, stable(NODES[0]), stable(NODES[1]),
                                   failed(NODES[2], "Failed to power off: node ignored Soft-Off"), complete()], monkeypatch)
    result = bos("sessions", "watch", session, "--interval", "0.1")
    driver.join()
    assert result.code == 4, result.out + result.err
    lines = result.out.splitlines()
    assert any("s1 pending: waiting for session setup" in line for line in lines)
    assert any("s1 running: 0/3 done (0%), succeeded 0, failed 0; powering_off 3" in line for line in lines)
    assert any("s1 complete: 3/3 done (100%), succeeded 2, failed 1" in line for line in lines)
    assert "Status       complete" in result.out
    assert "Succeeded    2/3 (66.7%)" in result.out
    assert "Failed nodes (1):" in result.out
    failed_row = [line for line in lines if line.startswith(NODES[2])][-1]
    assert "Failed to power off: node ignored Soft-Off" in failed_row


def test_create_watch_succeeds_with_exit_0(bos: Runner, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    put_template(api, "compute")
    driver = Driver(api, "w", [running, stable(NODES[0]), stable(NODES[1]), stable(NODES[2]), complete()], monkeypatch)
    result = bos("sessions", "create", "--template-name", "compute", "--operation", "shutdown", "--name", "w",
                 "--watch", "--interval", "0.1")
    driver.join()
    assert result.code == 0, result.out + result.err
    assert result.out.startswith("Session 'w' created.")
    assert "Succeeded    3/3 (100.0%)" in result.out
    assert result.out.rstrip().endswith("No failed nodes.")


def test_watch_json_prints_exactly_the_final_extended_status(bos: Runner, api: Api, session: str, monkeypatch: pytest.MonkeyPatch) -> None:
    driver = Driver(api, session, [running, stable(NODES[0]), stable(NODES[1]), stable(NODES[2]), complete()], monkeypatch)
    result = bos("sessions", "watch", session, "--interval", "0.1", "--format", "json")
    driver.join()
    assert result.code == 0, result.err
    assert result.json() == api.get(f"/v2/sessions/{session}/status").json()
    assert "s1 complete: 3/3 done" in result.err  # progress and report go to stderr


def test_setup_error_is_shown_and_fails(bos: Runner, api: Api, session: str, monkeypatch: pytest.MonkeyPatch) -> None:
    driver = Driver(api, session, [complete("No nodes were found to act upon.")], monkeypatch)
    result = bos("sessions", "watch", session, "--interval", "0.1")
    driver.join()
    assert result.code == 4
    assert "Error        No nodes were found to act upon." in result.out


def test_watching_a_staged_session_stops_once_it_is_staged(bos: Runner, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    put_template(api, "compute")
    api.post("/v2/sessions", json={"name": "st", "template_name": "compute", "operation": "shutdown", "stage": True})
    driver = Driver(api, "st", [stage_all], monkeypatch)
    result = bos("sessions", "watch", "st", "--interval", "0.1")
    driver.join()
    assert result.code == 0, result.out + result.err
    assert "Staged: 3 components wait for `bos applystaged" in result.out


def test_watch_timeout_leaves_the_session_alone(bos: Runner, api: Api, session: str) -> None:
    result = bos("sessions", "watch", session, "--interval", "0.1", "--timeout", "0.3")
    assert result.code == 5
    assert "Timed out after 0.3s; the session carries on" in result.out
    assert api.get(f"/v2/sessions/{session}").json()["status"]["status"] == "pending"


def test_watch_of_a_missing_session_is_not_found(bos: Runner) -> None:
    result = bos("sessions", "watch", "ghost")
    assert result.code == 1
    assert "Session 'ghost' does not exist (HTTP 404)" in result.err


def test_ctrl_c_stops_watching_with_130(bos: Runner, session: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(_: float) -> None:
        raise KeyboardInterrupt
    monkeypatch.setattr(watch.time, "sleep", interrupt)
    result = bos("sessions", "watch", session)
    assert result.code == 130
    assert "Resume with: bos sessions watch s1" in result.out


# -- the display itself --------------------------------------------------------------------------

class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _snapshot(status: str = "running", **ext: object) -> watch.Snapshot:
    members = [{"id": "a", "enabled": False, "status": {"phase": "", "status": "stable"}},
               {"id": "b", "enabled": True, "status": {"phase": "powering_on", "status": "power_on_called"}},
               {"id": "c", "enabled": False, "status": {"phase": "", "status_override": "failed", "status": "failed"}},
               {"id": "d", "enabled": True, "status": {"phase": "", "status_override": "on_hold", "status": "on_hold"}}]
    full = {"status": status, "managed_components_count": 4, "timing": {"duration": "0:01:02"}, **ext}
    return watch.Snapshot("s1", {"stage": False}, full, count(members))


def test_terminal_gets_one_redrawn_line_with_bar_counts_and_elapsed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")  # the line fits; pytest-xdist's workers see COLUMNS=80
    term = Terminal()
    display = watch.Display(term)
    display.update(_snapshot())
    display.update(_snapshot())
    display.finish()
    text = term.getvalue()
    assert text.count("\r") == 2 and text.count("\n") == 1 and text.endswith("\x1b[K\n")
    line = text.split("\r")[-1]
    assert "s1 running [############............]  50% 2/4" in line
    assert "ok 1 failed 1 | off 0 on 1 cfg 0 hold 1 | 0:01:02" in line


def test_bar_line_fits_the_terminal() -> None:
    assert len(watch.bar_line(_snapshot(), 40)) == 40


def test_logs_get_a_line_per_change_plus_a_heartbeat() -> None:
    now = [0.0]
    out = io.StringIO()
    display = watch.Display(out, tty=False, clock=lambda: now[0])
    display.update(_snapshot())
    now[0] = 5.0
    display.update(_snapshot())          # unchanged, too soon: nothing
    now[0] = 6.0
    display.update(_snapshot(status="complete"))  # changed: printed
    now[0] = 17.0
    display.update(_snapshot(status="complete"))  # unchanged but heartbeat due
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0] == ("[0:01:02] s1 running: 2/4 done (50%), succeeded 1, failed 1; "
                        "powering_off 0, powering_on 1, configuring 0, on_hold 1")


def test_staged_counts_come_from_the_extended_status() -> None:
    snap = _snapshot(percent_staged=25.0)
    assert snap.staged == 1
    assert "staged 1" in watch.log_line(snap)
