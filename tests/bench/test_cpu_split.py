"""bench.cpu_split: reading `perf script` and the split per process and function (pure parts; no
stack and no perf are started)."""

from collections import Counter

import pytest

from bench import cpu_split
from bench.cpu_split import HZ, role_of, split, tally

SCRIPT = """\
   101  ffffffff816a6e85 memcg1_commit_charge ([kernel.kallsyms])
   101      7f628af3ef70 dictFind (/usr/bin/redis-check-rdb)
   202      7f628af3ef70 _PyEval_EvalFrameDefault (/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0)
   303      7f628af3ef70 [unknown] (/usr/lib/x86_64-linux-gnu/libjemalloc.so.2)
   999      7f628af3ef70 dictFind (/usr/bin/redis-check-rdb)
     0  ffffffff816a6e85 pv_native_safe_halt ([kernel.kallsyms])
"""


def test_the_stack_processes_are_told_apart_by_their_command_line():
    assert role_of("/x/.venv/bin/python /x/.venv/bin/bos-operators --bos-url http://h/v2") == "operators"
    assert role_of("/x/.venv/bin/python /x/.venv/bin/bos-server --host 127.0.0.1 --workers 2") == "api"
    assert role_of("/x/.venv/bin/python /x/.venv/bin/bos-sim --host 127.0.0.1") == "simulator"
    assert role_of("/usr/bin/redis-server 127.0.0.1:6379") == "redis"
    assert role_of("/x/.venv/bin/python -m bench.cpu_split") is None


def test_samples_count_per_process_and_function_and_other_processes_are_left_out():
    counts = tally(SCRIPT.splitlines(), {101: "redis", 202: "api", 303: "redis"})
    assert counts == Counter({("redis", "memcg1_commit_charge [kernel.kallsyms]"): 1,
                              ("redis", "dictFind [redis-check-rdb]"): 1,
                              ("api", "_PyEval_EvalFrameDefault [libpython3.11.so.1.0]"): 1,
                              ("redis", "[unknown] [libjemalloc.so.2]"): 1})


def test_time_per_node_is_compared_between_the_smallest_and_the_largest_size():
    """Ten times the nodes: the interpreter's samples ten times as many (flat per node), the hash
    look-ups twenty times (2x per node); the growth lists the look-ups first."""
    small = Counter({("redis", "lua"): 10 * HZ, ("redis", "dictFind"): 5 * HZ})
    large = Counter({("redis", "lua"): 100 * HZ, ("redis", "dictFind"): 100 * HZ})
    result = split({1000: small, 10000: large}, top=1)
    assert result["redis"]["us_per_node"] == {"1000": 15000.0, "10000": 20000.0}
    assert result["redis"]["growth"] == 1.33
    assert result["redis"]["grew"] == [["dictFind", 5000.0, 10000.0]]
    assert result["redis"]["shrank"][0] == ["lua", 10000.0, 10000.0]
    assert "api" not in result  # a process with no samples has no row


def test_a_run_whose_session_start_is_not_seen_fails_rather_than_splitting_nothing(monkeypatch):
    """perf starts at run_stack's " session, " log line: a run that never logs it recorded nothing,
    and says so instead of returning an empty split."""
    monkeypatch.setattr(cpu_split, "run_stack", lambda nodes, latency, log: log("stack up"))
    with pytest.raises(RuntimeError, match="no session started"):
        cpu_split.measure(10)
