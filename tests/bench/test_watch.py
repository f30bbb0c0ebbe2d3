"""bench.common.Watch reads PSS (an expensive page-table walk) when a tree's RSS reaches a new
peak and every PSS_EVERY samples besides, not at every sample (CPU the measured stack lost)."""

from __future__ import annotations

from typing import List

import pytest

from bench import common


def test_pss_is_read_at_new_rss_peaks_and_every_few_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    rss = [100 << 20]
    reads: List[int] = []
    monkeypatch.setattr(common, "process_tree", lambda pid: [pid])
    monkeypatch.setattr(common, "rss_bytes", lambda pid: rss[0])
    monkeypatch.setattr(common, "pss_bytes", lambda pid: reads.append(pid) or rss[0] // 2)
    monkeypatch.setattr(common, "tree_cpu", lambda pid: 0.0)
    watch = common.Watch({"api": 7})  # its first sample: a new peak
    for _ in range(3 * common.PSS_EVERY):
        watch._sample()  # RSS flat: read every PSS_EVERY samples
    assert len(reads) == 1 + 3
    rss[0] += 2 << 20
    watch._sample()  # a new peak: read at once
    assert len(reads) == 5 and watch.pss_peak["api"] == rss[0] // 2 and watch.peak["api"] == rss[0]


def test_bench_boot_refuses_a_report_concurrency_below_one() -> None:
    """`--report-concurrency` is passed to the simulator as given; 0 would start a stack that never reports."""
    from bench import boot

    with pytest.raises(SystemExit):
        boot.main(["--nodes", "10", "--report-concurrency", "0"])


def test_cpu_counted_from_the_sessions_leaves_the_discovery_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The end-to-end "boot + reboot" CPU rows are the sessions' alone: what a tree used before
    `count_cpu_from_here` (discovery's bulk writes) is returned apart and not in `result()`."""
    cpu = {7: 1.0}
    monkeypatch.setattr(common, "process_tree", lambda pid: [pid])
    monkeypatch.setattr(common, "rss_bytes", lambda pid: 100 << 20)
    monkeypatch.setattr(common, "pss_bytes", lambda pid: 50 << 20)
    monkeypatch.setattr(common, "tree_cpu", lambda pid: cpu[pid])
    watch = common.Watch({"api": 7})
    cpu[7] = 4.0  # discovery
    assert watch.count_cpu_from_here() == {"api": 3.0}
    cpu[7] = 6.5  # the sessions
    assert watch.result()["api"]["cpu_seconds"] == 2.5
