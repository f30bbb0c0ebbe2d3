"""`free_port()` (bos_sim.stack): ports that no other process is handed meanwhile, so test
workers and other checkouts' suites running at once never start two servers on one port."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bos_sim import stack


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract Unix sockets are Linux's")
def test_ports_are_distinct_below_the_ephemeral_range_and_claimed_for_other_processes() -> None:
    ports = [stack.free_port() for _ in range(40)]
    assert len(set(ports)) == len(ports)
    assert all(stack._ephemeral_low() - stack.PORT_SPAN <= port < stack._ephemeral_low() for port in ports)
    probe = ("import socket, sys\n"
             "taken = 0\n"
             "for port in map(int, sys.argv[1:]):\n"
             "    s = socket.socket(socket.AF_UNIX)\n"
             "    try:\n"
             "        s.bind(f'\\0bos-free-port-{port}')\n"
             "    except OSError:\n"
             "        taken += 1\n"
             "print(taken)\n")
    done = subprocess.run([sys.executable, "-c", probe, *map(str, ports)], capture_output=True, text=True, check=True)
    assert int(done.stdout) == len(ports)  # another process cannot claim any of them


def test_without_room_below_the_ephemeral_range_the_kernel_chooses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack, "_ephemeral_low", lambda: 1024)
    assert 0 < stack.free_port() < 65536
