"""Settings (reporter.md §2): defaults < config file < environment < command-line flags.

The config file uses the environment variables' names (`KEY=value` lines, `#`
comments), so every setting has one name wherever it is given, and the file can
double as a systemd `EnvironmentFile=`. Everything here is pure except
`read_config_file`; problems come back as warnings for the caller to log once
logging is configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

DEFAULT_CONFIG_FILE = "/etc/bos-reporter/bos-reporter.conf"
CONFIG_ENV = "BOS_REPORTER_CONFIG"

DEFAULTS: Dict[str, str] = {
    "NODE_IDENTITY": "",
    "API_GATEWAY_HOST": "api-gw-service-nmn.local",
    "BOS_REPORTER_ENDPOINT": "",  # empty: https://<API_GATEWAY_HOST>/apis/bos/v2
    "BOS_REPORTER_TOKEN_COMMAND": "/opt/cray/auth-utils/bin/get-auth-token",
    "BOS_REPORTER_TOKEN_FILE": "",  # empty: use the token command
    "SPIRE_AGENT_PATH": "/usr/bin/bos-reporter-spire-agent",
    "BOS_REPORTER_CA_BUNDLE": "/etc/ssl/ca-bundle.pem",
    "BOS_REPORTER_CMDLINE": "/proc/cmdline",
    "BOS_REPORTER_TRIGGER_FILE": "/run/bos-reporter/report-now",
    "BOS_REPORTER_WATCH": "auto",  # auto: inotify where it works, else poll; poll: always poll
    "BOS_REPORTER_POLL_INTERVAL": "1",
}
WATCH_MODES = ("auto", "poll")
DEFAULT_POLL_INTERVAL = 1.0

LOG_LEVELS = {name: getattr(logging, name) for name in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")}
DEFAULT_LOG_LEVEL = logging.WARNING


class ConfigError(Exception):
    """A setting the reporter cannot run with; exit status 78, no restart loop."""


@dataclass(frozen=True)
class Settings:
    """The effective settings; `values` keeps the merged raw strings (for identity)."""

    endpoint: str
    token_command: str
    token_file: Optional[str]
    spire_agent_path: str
    ca_bundle: str
    cmdline_file: str
    trigger_file: str
    config_file: str
    watch_mode: str
    poll_interval: float
    values: Mapping[str, str] = field(default_factory=dict, compare=False)

    def watched_files(self) -> Dict[str, str]:
        """Files whose changes the agent reacts to, mapped to the kind of change."""
        files = {self.config_file: "config", self.trigger_file: "trigger"}
        if self.token_file:
            files[self.token_file] = "token"
        return files


def parse_config_text(text: str) -> Tuple[Dict[str, str], List[str]]:
    """`KEY=value` lines of a config file, and a warning per line it ignores."""
    values: Dict[str, str] = {}
    warnings: List[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or key not in DEFAULTS:
            warnings.append(f"config line {number} ignored (expected KEY=value with a known KEY): {raw.strip()!r}")
            continue
        values[key] = _unquote(value.strip())
    return values, warnings


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def read_config_file(path: str) -> Tuple[Dict[str, str], List[str]]:
    """Values of the config file; a missing file is normal (all defaults)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}, []
    except OSError as exc:
        return {}, [f"cannot read config file {path}: {exc}"]
    values, warnings = parse_config_text(text)
    return values, [f"{path}: {w}" for w in warnings]


def merge(file_values: Mapping[str, str], env: Mapping[str, str], flags: Mapping[str, Optional[str]]) -> Dict[str, str]:
    """Raw values by precedence; an empty value counts as unset."""
    merged = dict(DEFAULTS)
    for layer in (file_values, env, flags):
        for key in DEFAULTS:
            value = layer.get(key)
            if value:
                merged[key] = value
    return merged


def normalize_endpoint(url: str) -> str:
    """Base URL of the BOS v2 API without a trailing slash.

    A bare server URL (no path) means the API root, so `/v2` is appended:
    `http://127.0.0.1:8080` works as well as `.../apis/bos/v2`.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"BOS endpoint {url!r} is not an http(s) URL")
    base = url.strip().rstrip("/")
    return base + "/v2" if parts.path in ("", "/") else base


def endpoint_of(values: Mapping[str, str]) -> str:
    """`BOS_REPORTER_ENDPOINT`, else the API gateway's BOS path."""
    explicit = values.get("BOS_REPORTER_ENDPOINT")
    if explicit:
        return normalize_endpoint(explicit)
    return normalize_endpoint(f"https://{values['API_GATEWAY_HOST']}/apis/bos/v2")


def poll_interval_of(text: str, warnings: List[str]) -> float:
    try:
        interval = float(text)
    except ValueError:
        interval = 0.0
    if not 0.05 <= interval <= 3600:
        warnings.append(f"BOS_REPORTER_POLL_INTERVAL={text!r} is not a number of seconds in [0.05, 3600]; using {DEFAULT_POLL_INTERVAL}")
        return DEFAULT_POLL_INTERVAL
    return interval


def watch_mode_of(text: str, warnings: List[str]) -> str:
    mode = text.strip().lower()
    if mode not in WATCH_MODES:
        warnings.append(f"BOS_REPORTER_WATCH={text!r} is not one of {', '.join(WATCH_MODES)}; using auto")
        return "auto"
    return mode


def config_path(env: Mapping[str, str], flag: Optional[str]) -> str:
    return flag or env.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE


def load_settings(env: Mapping[str, str], flags: Mapping[str, Optional[str]],
                  config_file: str) -> Tuple[Settings, List[str]]:
    """Settings from the config file, the environment and the flags, plus warnings.

    Raises ConfigError for a setting the reporter cannot run with at all.
    """
    file_values, warnings = read_config_file(config_file)
    values = merge(file_values, env, flags)
    settings = Settings(
        endpoint=endpoint_of(values),
        token_command=values["BOS_REPORTER_TOKEN_COMMAND"],
        token_file=values["BOS_REPORTER_TOKEN_FILE"] or None,
        spire_agent_path=values["SPIRE_AGENT_PATH"],
        ca_bundle=values["BOS_REPORTER_CA_BUNDLE"],
        cmdline_file=values["BOS_REPORTER_CMDLINE"],
        trigger_file=values["BOS_REPORTER_TRIGGER_FILE"],
        config_file=config_file,
        watch_mode=watch_mode_of(values["BOS_REPORTER_WATCH"], warnings),
        poll_interval=poll_interval_of(values["BOS_REPORTER_POLL_INTERVAL"], warnings),
        values=values,
    )
    return settings, warnings


def log_level_of(value: Optional[str]) -> Optional[int]:
    """Level named by `bos_log_level` (case-insensitive); None when malformed."""
    if value is None:
        return DEFAULT_LOG_LEVEL
    return LOG_LEVELS.get(value.strip().upper())
