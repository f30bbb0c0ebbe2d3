"""bench.keyspace: Redis's own cost per record read, by keyspace size (a real throw-away
redis-server at small sizes; the figures are reported, not timed)."""

import argparse
import json

import pytest

from bench.keyspace import main, parse_sizes, summarise


def test_sizes_are_a_comma_separated_list_of_at_least_one_mget():
    assert parse_sizes("10000,100000") == [10000, 100000]
    for bad in ("", "ten", "1000,10000"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_sizes(bad)


def test_each_size_is_the_median_of_its_rounds_against_the_smallest_size():
    def seen(usec, kib=0):
        return {"median_usec_per_key": usec, "huge_page_kib": kib}
    rounds = [{"4 KiB": {"10": seen(0.2), "100": seen(0.6)}},
              {"4 KiB": {"10": seen(0.4), "100": seen(0.9)}},
              {"4 KiB": {"10": seen(0.3), "100": seen(0.8)}}]
    rows = summarise(rounds, [10, 100])["4 KiB"]
    assert rows["10"] == {"usec_per_record": 0.3, "rounds": [0.2, 0.4, 0.3], "huge_page_kib": 0, "vs_smallest": 1.0}
    assert rows["100"]["usec_per_record"] == 0.8 and rows["100"]["vs_smallest"] == 2.67


def test_a_small_run_reports_every_size_in_both_page_sizes(tmp_path, capsys):
    out = tmp_path / "keyspace.json"
    assert main(["--sizes", "2800,5600", "--rounds", "1", "--runs", "2", "--huge-pages", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    for mode in ("4 KiB", "2 MiB"):
        rows = result["summary"][mode]
        assert set(rows) == {"2800", "5600"}
        assert rows["2800"]["vs_smallest"] == 1.0
        assert all(row["usec_per_record"] >= 0 and row["huge_page_kib"] >= 0 for row in rows.values())
    assert "| 4 KiB | 5,600 |" in capsys.readouterr().out
