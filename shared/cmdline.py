"""Kernel command-line parsing (reporter.md §2.1): shared by the node agent and the simulator."""

from __future__ import annotations

from typing import Dict, Union


def parse_cmdline(text: Union[str, bytes]) -> Dict[str, str]:
    """Key/value parameters of a kernel command line.

    Split on any whitespace (R9); each word with `=` splits at the first `=`
    (R6); words without `=` are flags and ignored; the first occurrence of a
    repeated key wins. Bytes that are not UTF-8 are replaced, never fatal.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    params: Dict[str, str] = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if sep and key and key not in params:
            params[key] = value
    return params
