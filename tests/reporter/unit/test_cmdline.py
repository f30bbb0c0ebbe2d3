"""reporter.md §2.1: kernel command-line parsing (bos_shared.cmdline)."""

from __future__ import annotations

import pytest

from bos_shared.cmdline import parse_cmdline

SPEC_EXAMPLE = (
    "initrd=initrd console=ttyS0,115200 ip=dhcp quiet "
    "root=sbps-s3:s3://boot-images/9e3c/rootfs:f04a:sbps:v1:iqn.2023-06.csm.iscsi:_sbps-hsn._tcp.x:300 "
    "nmd_data=url=s3://boot-images/9e3c/rootfs,etag=f04a-131 bos_update_frequency=4h "
    "xname=x3000c0s19b1n0 nid=1 bss_referral_token=5b0c1f3e-4c2a-4a61-9d7e-0a2f7c9e1b11 "
    "ds=nocloud-net;s=http://10.92.100.81:8888/\n"
)


def test_spec_example_yields_every_key_the_reporter_reads() -> None:
    params = parse_cmdline(SPEC_EXAMPLE)
    assert params["xname"] == "x3000c0s19b1n0"
    assert params["bss_referral_token"] == "5b0c1f3e-4c2a-4a61-9d7e-0a2f7c9e1b11"
    assert params["bos_update_frequency"] == "4h"
    assert params["ds"] == "nocloud-net;s=http://10.92.100.81:8888/"


def test_r6_splits_at_first_equals() -> None:
    params = parse_cmdline(SPEC_EXAMPLE)
    assert params["nmd_data"] == "url=s3://boot-images/9e3c/rootfs,etag=f04a-131"
    assert parse_cmdline("bss_referral_token=abc==")["bss_referral_token"] == "abc=="


@pytest.mark.parametrize("text", [
    "quiet  xname=x1   bss_referral_token=t",
    "quiet\txname=x1\t\tbss_referral_token=t",
    "\n quiet\nxname=x1\r\nbss_referral_token=t\n\n",
    "quiet\vxname=x1\fbss_referral_token=t",
])
def test_r9_splits_on_any_whitespace(text: str) -> None:
    assert parse_cmdline(text) == {"xname": "x1", "bss_referral_token": "t"}


def test_repeated_key_first_occurrence_wins() -> None:
    params = parse_cmdline("xname=x1 console=tty0 xname=x2 console=ttyS0,115200")
    assert params == {"xname": "x1", "console": "tty0"}


def test_words_without_equals_are_flags_and_ignored() -> None:
    assert parse_cmdline("quiet ro splash xname=x1") == {"xname": "x1"}


def test_missing_keys_are_absent() -> None:
    params = parse_cmdline("console=ttyS0 quiet")
    assert "xname" not in params and "bss_referral_token" not in params


def test_empty_value_is_kept_empty_key_is_ignored() -> None:
    assert parse_cmdline("xname= =orphan") == {"xname": ""}


def test_empty_and_blank_command_lines() -> None:
    assert parse_cmdline("") == {}
    assert parse_cmdline(" \n\t ") == {}
    assert parse_cmdline(b"") == {}


def test_quoted_value_keeps_its_spaces_and_loses_its_quotes() -> None:
    params = parse_cmdline('dyndbg="file drivers/usb/* +p" xname=x1 bss_referral_token=t')
    assert params == {"dyndbg": "file drivers/usb/* +p", "xname": "x1", "bss_referral_token": "t"}


def test_quoted_value_cannot_fake_a_parameter() -> None:
    params = parse_cmdline('extra="a xname=evil b" xname=good')
    assert params["xname"] == "good"
    assert params["extra"] == "a xname=evil b"


def test_wholly_quoted_word_is_unquoted() -> None:
    assert parse_cmdline('"msg=hello world" xname=x1') == {"msg": "hello world", "xname": "x1"}


def test_unterminated_quote_swallows_the_rest_as_the_kernel_does() -> None:
    assert parse_cmdline('a="b c xname=x1') == {"a": "b c xname=x1"}


def test_quotes_inside_a_value_are_kept() -> None:
    assert parse_cmdline('opt=a"b"c xname=x1') == {"opt": 'a"b"c', "xname": "x1"}


def test_garbage_bytes_never_crash_and_keep_good_words() -> None:
    text = b"\xff\xfe junk=\x80\x81 xname=x1 \xc3 bss_referral_token=tok\x00bos_log_level=DEBUG\n"
    params = parse_cmdline(text)
    assert params["xname"] == "x1"
    assert params["bss_referral_token"] == "tok"
    assert params["bos_log_level"] == "DEBUG"
    assert params["junk"] == "\ufffd\ufffd"


def test_utf8_values_are_decoded() -> None:
    assert parse_cmdline("label=caf\u00e9 xname=x1".encode())["label"] == "caf\u00e9"


def test_bytes_and_text_parse_the_same() -> None:
    assert parse_cmdline(SPEC_EXAMPLE.encode()) == parse_cmdline(SPEC_EXAMPLE)
