"""bench.ab_boot: the interleaving and the paired comparison (pure parts; no stack is started)."""

from bench.ab_boot import compare, figures, last_of, order


def session(overhead: float, last_action: str, post: float = 0.5) -> dict:
    return {"overhead_seconds": overhead, "setup_seconds": 0.6,
            "timeline": {"POST sent": post, "On reached the node": last_action,
                         "soft_off reached the node": last_action}}


def run(boot: float, reboot: float, last: str = "1.00 .. 1.75 (10) p10/50/90 1.0/1.2/1.7") -> dict:
    return {"boot": session(boot, last), "reboot": session(reboot, last)}


def test_each_pair_runs_both_sides_and_the_first_side_alternates():
    assert list(order(3)) == [(0, "base"), (0, "new"), (1, "new"), (1, "base"), (2, "base"), (2, "new")]


def test_the_head_is_post_to_the_last_power_action_at_a_node():
    assert last_of("1.64 .. 2.16 (10000) p10/50/90 1.66/1.70/2.15") == 2.16
    assert last_of(None) is None and last_of("0.5") is None
    assert figures(session(1.3, "1.51 .. 1.90 (10000) p10/50/90 1.52/1.55/1.90", post=0.67), "boot") == {
        "overhead": 1.3, "setup": 0.6, "head": 1.23}


def test_runs_are_compared_pair_by_pair_not_median_against_median():
    """The new side is 0.1 s lower in every pair, while the host's speed moves both sides by far more
    between pairs: the paired differences say so; the medians alone say 0.9 s lower or nothing."""
    base = [run(1.2, 2.0), run(2.4, 2.9), run(1.3, 1.9)]
    new = [run(1.1, 1.9), run(2.3, 2.8), run(1.2, 1.8)]
    overhead = compare({"base": base, "new": new})["boot"]["overhead"]
    assert overhead["differences"] == [-0.1, -0.1, -0.1]
    assert overhead["difference_median"] == -0.1 and overhead["new_lower"] == 3 and overhead["pairs"] == 3
    assert (overhead["base_median"], overhead["new_median"]) == (1.3, 1.2)


def test_a_run_without_a_figure_leaves_its_pair_out_of_that_figure():
    base = [run(1.2, 2.0), run(1.4, 2.1)]
    new = [run(1.1, 1.9), run(1.3, 2.0, last="")]
    head = compare({"base": base, "new": new})["reboot"]["head"]
    assert head["pairs"] == 1 and head["differences"] == [0.0]


def test_each_process_cpu_is_compared_pair_by_pair_too():
    """The simulator's CPU halves while the overheads stay: the "cpu" rows show where the work moved."""
    def with_cpu(result: dict, simulator: float, operators: float) -> dict:
        return {**result, "processes": {"simulator": {"cpu_seconds": simulator},
                                        "operators": {"cpu_seconds": operators}}}
    base = [with_cpu(run(1.2, 2.0), 9.5, 8.8), with_cpu(run(1.4, 2.1), 9.6, 8.7)]
    new = [with_cpu(run(1.2, 2.0), 4.5, 8.9), with_cpu(run(1.4, 2.1), 4.4, 8.6), with_cpu(run(1.0, 1.0), 1.0, 1.0)]
    cpu = compare({"base": base, "new": new})["cpu"]
    assert sorted(cpu) == ["operators", "simulator"]
    assert cpu["simulator"]["differences"] == [-5.0, -5.2] and cpu["simulator"]["new_lower"] == 2
    assert cpu["operators"]["difference_median"] == 0.0 and cpu["operators"]["pairs"] == 2
