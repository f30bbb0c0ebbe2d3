"""Where the CLI talks to and as whom: flags first, then environment, then defaults.

Admins switch between an in-cluster address (`http://cray-bos`) and the API
gateway (`https://api-gw-service-nmn.local/apis/bos`) with a bearer token, so
every connection setting has a flag and an environment variable.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

DEFAULT_URL = "http://localhost:9000"
DEFAULT_TIMEOUT = 30.0
FORMATS = ("table", "json", "yaml")

ENV_URL = "BOS_URL"
ENV_TOKEN_FILE = "BOS_TOKEN_FILE"
ENV_TENANT = "BOS_TENANT"
ENV_CA_BUNDLE = "BOS_CA_BUNDLE"
ENV_TIMEOUT = "BOS_TIMEOUT"
ENV_FORMAT = "BOS_FORMAT"


class ConfigError(Exception):
    """A setting that cannot be used (unreadable token file, bad timeout...)."""


@dataclass(frozen=True)
class Settings:
    url: str = DEFAULT_URL
    token: Optional[str] = None
    tenant: Optional[str] = None
    ca_bundle: Optional[str] = None
    timeout: float = DEFAULT_TIMEOUT


def api_root(url: str) -> str:
    """The API root without a trailing `/` or `/v2`.

    People paste `.../v2` from the operators' BOS_API_URL; accepting it avoids a
    confusing `/v2/v2/...` 404.
    """
    root = url.strip().rstrip("/")
    if root.endswith("/v2"):
        root = root[: -len("/v2")]
    if "://" not in root:
        root = "http://" + root
    return root


def read_token(path: str) -> str:
    """A bearer token from a file: the raw token, or a `cray init` JSON token file.

    The cray CLI stores `{"access_token": "...", ...}`; supporting that lets
    admins point `--token-file` at the file they already have.
    """
    try:
        text = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read token file {path}: {exc.strerror or exc}") from exc
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"token file {path} is not valid JSON: {exc}") from exc
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise ConfigError(f"token file {path} has no 'access_token'")
        return token
    if not text:
        raise ConfigError(f"token file {path} is empty")
    return text


def _timeout(value: Optional[str]) -> float:
    if value is None or value == "":
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError as exc:
        raise ConfigError(f"timeout '{value}' is not a number of seconds") from exc
    if seconds <= 0:
        raise ConfigError("timeout must be positive")
    return seconds


def resolve(*, url: Optional[str], token_file: Optional[str], tenant: Optional[str],
            ca_bundle: Optional[str], timeout: Optional[str],
            env: Optional[Mapping[str, str]] = None) -> Settings:
    """Settings from flags (None = not given) over environment over defaults."""
    env = os.environ if env is None else env
    token_path = token_file or env.get(ENV_TOKEN_FILE) or None
    return Settings(
        url=api_root(url or env.get(ENV_URL) or DEFAULT_URL),
        token=read_token(token_path) if token_path else None,
        tenant=(tenant if tenant is not None else env.get(ENV_TENANT)) or None,
        ca_bundle=ca_bundle or env.get(ENV_CA_BUNDLE) or None,
        timeout=_timeout(timeout if timeout is not None else env.get(ENV_TIMEOUT)),
    )
