"""Argument types and input files shared by the commands.

Values are checked here, before any request, so a typo costs no round trip
and the message names the flag. Checks reuse the wire schema in bos_shared
so the CLI accepts exactly what the API accepts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterable, List, Optional

import yaml

from bos_shared.ages import AgeError, parse_age
from bos_shared.schema import OPERATIONS
from bos_shared.schema_types import CountOrPercent, SchemaError

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def boolean(text: str) -> bool:
    """`true`/`false` in any case (the cray CLI spells them `True`/`False`)."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not '{text}'")


def operation(text: str) -> str:
    """`boot`, `reboot` or `shutdown`; `Boot` as in the product docs works too."""
    word = text.strip().lower()
    if word not in OPERATIONS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(OPERATIONS)}, not '{text}'")
    return word


def age(text: str) -> str:
    """An AgeString (`30m`, `6h`, `7d`, `2w`), checked with the server's own rule."""
    try:
        parse_age(text)
    except AgeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a whole number, not '{text}'") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def count_or_percent(text: str) -> Any:
    """`max_failed`: a whole number, or a percentage `N%` from 0% to 100% (the API's own rule)."""
    try:
        return CountOrPercent().validate(int(text) if text.strip().lstrip("-").isdigit() else text.strip())
    except SchemaError as exc:
        raise argparse.ArgumentTypeError(f"{exc.message}") from exc


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not '{text}'") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def split_ids(values: Optional[Iterable[str]]) -> List[str]:
    """IDs given as `--ids x1,x2`, `--ids x1 x2` or repeated flags, order kept, no repeats."""
    seen: List[str] = []
    for value in values or ():
        for item in value.replace(",", " ").split():
            if item not in seen:
                seen.append(item)
    return seen


def add_flag_bool(parser: argparse.ArgumentParser, flag: str, help_text: str) -> None:
    """A boolean body flag usable bare (`--stage`) or with a value (`--stage true`, cray style)."""
    parser.add_argument(flag, nargs="?", const=True, default=None, type=boolean,
                        metavar="true|false", help=help_text)


class InputError(Exception):
    """A file given with --file that cannot be used."""


def load_document(path: str) -> Any:
    """JSON or YAML from a file (`-` = stdin). YAML is a superset, but JSON errors read better."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).expanduser().read_text()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is neither valid JSON nor valid YAML: {_first_line(exc)}") from exc


def load_object(path: str) -> dict:
    data = load_document(path)
    if not isinstance(data, dict):
        raise InputError(f"{path} must contain a JSON/YAML object, not {type(data).__name__}")
    return data


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
