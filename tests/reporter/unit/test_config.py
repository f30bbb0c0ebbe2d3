"""reporter.md §2 settings: config file, environment, flags; log level (§2.1)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bos_reporter.config import (ConfigError, DEFAULT_CONFIG_FILE, config_path, endpoint_of, load_settings,
                                 log_level_of, merge, normalize_endpoint, parse_config_text)


def test_config_file_uses_the_environment_names() -> None:
    values, warnings = parse_config_text(
        "# comment\n\nNODE_IDENTITY=x1c0s0b0n0\n  export API_GATEWAY_HOST = gw.local:8443 \n"
        "BOS_REPORTER_TOKEN_FILE=\"/etc/bos-reporter/token\"\nBOS_REPORTER_CA_BUNDLE='/etc/ca.pem'\n")
    assert warnings == []
    assert values == {"NODE_IDENTITY": "x1c0s0b0n0", "API_GATEWAY_HOST": "gw.local:8443",
                      "BOS_REPORTER_TOKEN_FILE": "/etc/bos-reporter/token", "BOS_REPORTER_CA_BUNDLE": "/etc/ca.pem"}


def test_config_file_bad_lines_are_warned_about_and_ignored() -> None:
    values, warnings = parse_config_text("NOT_A_SETTING=1\njust words\nNODE_IDENTITY=x1\n")
    assert values == {"NODE_IDENTITY": "x1"}
    assert len(warnings) == 2 and "line 1" in warnings[0] and "line 2" in warnings[1]


def test_precedence_defaults_then_file_then_environment_then_flags() -> None:
    merged = merge({"API_GATEWAY_HOST": "file", "BOS_REPORTER_CA_BUNDLE": "file.pem", "NODE_IDENTITY": "xf"},
                   {"API_GATEWAY_HOST": "env", "NODE_IDENTITY": "xe"},
                   {"NODE_IDENTITY": "xflag", "BOS_REPORTER_CMDLINE": None})
    assert merged["NODE_IDENTITY"] == "xflag"
    assert merged["API_GATEWAY_HOST"] == "env"
    assert merged["BOS_REPORTER_CA_BUNDLE"] == "file.pem"
    assert merged["BOS_REPORTER_CMDLINE"] == "/proc/cmdline"


def test_empty_values_count_as_unset() -> None:
    assert merge({}, {"API_GATEWAY_HOST": ""}, {})["API_GATEWAY_HOST"] == "api-gw-service-nmn.local"


def test_default_endpoint_is_the_gateway_bos_path() -> None:
    assert endpoint_of(merge({}, {}, {})) == "https://api-gw-service-nmn.local/apis/bos/v2"
    assert endpoint_of(merge({}, {"API_GATEWAY_HOST": "gw:8443"}, {})) == "https://gw:8443/apis/bos/v2"


def test_endpoint_override_wins_over_gateway_host() -> None:
    values = merge({}, {"API_GATEWAY_HOST": "gw", "BOS_REPORTER_ENDPOINT": "http://127.0.0.1:8080/v2/"}, {})
    assert endpoint_of(values) == "http://127.0.0.1:8080/v2"


def test_bare_server_url_means_the_v2_api_root() -> None:
    assert normalize_endpoint("http://127.0.0.1:8080") == "http://127.0.0.1:8080/v2"
    assert normalize_endpoint("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/v2"
    assert normalize_endpoint("https://gw/apis/bos/v2") == "https://gw/apis/bos/v2"


@pytest.mark.parametrize("url", ["gw.local", "ftp://gw/v2", "http://", ""])
def test_endpoint_must_be_an_http_url(url: str) -> None:
    with pytest.raises(ConfigError):
        normalize_endpoint(url)


def test_load_settings_from_file_env_and_flags(tmp_path: Path) -> None:
    conf = tmp_path / "bos-reporter.conf"
    conf.write_text("BOS_REPORTER_ENDPOINT=http://file:1/v2\nBOS_REPORTER_TOKEN_FILE=/file/token\n"
                    "BOS_REPORTER_WATCH=poll\nBOS_REPORTER_POLL_INTERVAL=0.5\n")
    settings, warnings = load_settings({"BOS_REPORTER_CA_BUNDLE": "/env/ca.pem"},
                                       {"BOS_REPORTER_TOKEN_FILE": "/flag/token"}, str(conf))
    assert warnings == []
    assert settings.endpoint == "http://file:1/v2"
    assert settings.token_file == "/flag/token"
    assert settings.ca_bundle == "/env/ca.pem"
    assert (settings.watch_mode, settings.poll_interval) == ("poll", 0.5)
    assert settings.watched_files() == {str(conf): "config", "/run/bos-reporter/report-now": "trigger",
                                        "/flag/token": "token"}


def test_missing_config_file_means_defaults(tmp_path: Path) -> None:
    settings, warnings = load_settings({}, {}, str(tmp_path / "absent.conf"))
    assert warnings == []
    assert settings.token_file is None
    assert settings.token_command == "/opt/cray/auth-utils/bin/get-auth-token"
    assert settings.ca_bundle == "/etc/ssl/ca-bundle.pem"
    assert settings.cmdline_file == "/proc/cmdline"


def test_bad_watch_mode_and_poll_interval_fall_back_with_warnings(tmp_path: Path) -> None:
    env = {"BOS_REPORTER_WATCH": "fanotify", "BOS_REPORTER_POLL_INTERVAL": "soon"}
    settings, warnings = load_settings(env, {}, str(tmp_path / "absent.conf"))
    assert (settings.watch_mode, settings.poll_interval) == ("auto", 1.0)
    assert len(warnings) == 2


def test_config_path_flag_then_environment_then_default() -> None:
    assert config_path({"BOS_REPORTER_CONFIG": "/env.conf"}, "/flag.conf") == "/flag.conf"
    assert config_path({"BOS_REPORTER_CONFIG": "/env.conf"}, None) == "/env.conf"
    assert config_path({}, None) == DEFAULT_CONFIG_FILE == "/etc/bos-reporter/bos-reporter.conf"


@pytest.mark.parametrize("value, level", [
    (None, logging.WARNING), ("DEBUG", logging.DEBUG), ("info", logging.INFO), ("Warning", logging.WARNING),
    ("ERROR", logging.ERROR), ("critical", logging.CRITICAL), ("verbose", None), ("10", None), ("", None),
])
def test_bos_log_level_names_are_case_insensitive(value: str, level: int) -> None:
    assert log_level_of(value) == level
