"""Rendering and argument helpers: pure functions, no server."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from bos_cli import args, output, report, summary
from bos_cli.output import Column, field


def test_table_aligns_columns_and_marks_empty_cells() -> None:
    rows = [{"id": "x1", "status": {"phase": "powering_on"}, "error": ""},
            {"id": "x1000c0s0b0n0", "status": {}, "error": "a  long\nerror"}]
    text = output.table([Column("ID", field("id")), Column("PHASE", field("status", "phase")),
                         Column("ERROR", field("error"), max_width=8)], rows)
    assert text.splitlines() == ["ID             PHASE        ERROR",
                                 "x1             powering_on  -",
                                 "x1000c0s0b0n0  -            a lon..."]


def test_key_values_flattens_nested_records_in_their_own_order() -> None:
    text = output.key_values({"name": "t", "cfs": {"configuration": "c"}, "tenant": None, "enable_cfs": True,
                              "boot_sets": {"b": {"node_list": ["x1", "x2"], "cfs": {}}}})
    lines = text.splitlines()
    assert [line.split() for line in lines] == [["name", "t"], ["cfs.configuration", "c"], ["tenant", "-"],
                                                ["enable_cfs", "true"], ["boot_sets.b.node_list", "x1,x2"],
                                                ["boot_sets.b.cfs", "{}"]]
    assert {line.index(line.split()[1], len(line.split()[0])) for line in lines} == {len("boot_sets.b.node_list  ")}


def test_long_lists_are_previewed_with_a_count() -> None:
    assert output.preview_list([str(i) for i in range(10)], 3) == "0,1,2,... (10 total)"


def test_machine_formats_are_the_data_unchanged() -> None:
    data = {"percent_successful": 40.0, "error_summary": {}, "end_time": None, "z": 1, "a": 2}
    assert json.loads(output.render(data, "json", lambda: "ignored")) == data
    assert yaml.safe_load(output.render(data, "yaml", lambda: "ignored")) == data
    assert list(json.loads(output.render(data, "json"))) == ["percent_successful", "error_summary", "end_time", "z", "a"]


def test_counts_follow_the_schema_order_and_keep_unknown_overrides() -> None:
    records = [{"id": "a", "status": {"status": "failed"}}, {"id": "b", "status": {"status": "stable"}},
               {"id": "c", "status": {"status": "maintenance"}},
               {"id": "d", "enabled": True, "status": {"phase": "configuring", "status": "configuring"}}]
    counts = summary.count(records)
    assert counts.status_items() == [("configuring", 1), ("stable", 1), ("failed", 1), ("maintenance", 1)]
    assert counts.phase_items() == [("configuring", 1), ("none", 3)]
    assert (counts.total, counts.enabled, counts.succeeded, counts.failed) == (4, 1, 1, 1)


def test_status_is_computed_when_a_server_omits_it() -> None:
    assert summary.status_of({"status": {"phase": "powering_off"}}) == "power_off_pending"


def test_share_turns_api_percentages_back_into_counts() -> None:
    assert report.share(33.33, 3) == "1/3 (33.3%)"
    assert report.share(None, 0) == "0/0 (0.0%)"


@pytest.mark.parametrize("text,value", [("true", True), ("True", True), ("FALSE", False), ("0", False)])
def test_booleans_accept_cray_spellings(text: str, value: bool) -> None:
    assert args.boolean(text) is value


def test_bad_boolean_operation_and_age_are_argument_errors() -> None:
    for parse, text in ((args.boolean, "maybe"), (args.operation, "configure"), (args.age, "10s")):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)
    assert args.operation("Reboot") == "reboot"


def test_ids_split_on_commas_and_spaces_without_repeats() -> None:
    assert args.split_ids(["x1,x2", "x3 x1", ""]) == ["x1", "x2", "x3"]


def test_documents_load_from_json_or_yaml(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"a": 1}')
    (tmp_path / "b.yaml").write_text("b: [1, 2]\n")
    (tmp_path / "c.yaml").write_text("- 1\n")
    assert args.load_object(str(tmp_path / "a.json")) == {"a": 1}
    assert args.load_object(str(tmp_path / "b.yaml")) == {"b": [1, 2]}
    with pytest.raises(args.InputError, match="must contain a JSON/YAML object"):
        args.load_object(str(tmp_path / "c.yaml"))
