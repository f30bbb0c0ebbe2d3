"""Kernel command-line parsing (reporter.md §2.1): shared by the node agent and the simulator.

The rules are the spec's: split on any whitespace (R9), split each word at the
first `=` (R6), ignore words without `=` (flags), first occurrence of a key wins.
Double quotes are honoured the way the kernel itself honours them (`next_arg()`
in kernel/params.c): whitespace inside quotes does not split a word, and the
quotes around a value are removed. Without quotes this is exactly "split on
whitespace"; with them, a quoted value such as `dyndbg="file a.c +p"` can neither
swallow nor fake the parameters the reporter reads.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple, Union

# The kernel's whitespace (isspace() on the ASCII range) plus NUL, so a
# NUL-separated file (like /proc/<pid>/cmdline) parses as well.
WHITESPACE = frozenset(" \t\n\r\v\f\0")
# Characters on which `str.split()` of an ASCII text splits but the kernel does not, and the quote
# and NUL that need the character walk: a text with none of them splits exactly as `str.split()`.
_WALK = ('"', "\0", "\x1c", "\x1d", "\x1e", "\x1f")


def parse_cmdline(text: Union[str, bytes]) -> Dict[str, str]:
    """Key/value parameters of a kernel command line.

    Bytes that are not UTF-8 are replaced, never fatal: a garbled command line
    must not crash the reporter, and the ASCII separators survive decoding.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    params: Dict[str, str] = {}
    if _plain(text):  # no quote anywhere: split_parameter is the partition alone, inlined
        for word in text.split():
            key, sep, value = word.partition("=")
            if sep and key and key not in params:
                params[key] = value
        return params
    for word in split_words(text):
        pair = split_parameter(word)
        if pair is not None and pair[0] not in params:
            params[pair[0]] = pair[1]
    return params


def _plain(text: str) -> bool:
    """Whether `str.split()` splits `text` exactly as `split_words` (ASCII, no quote, no NUL,
    none of the separators 0x1c-0x1f): the usual command line, split in C instead of a
    character at a time (the simulator parses one per node report, issue 13)."""
    return text.isascii() and not any(char in text for char in _WALK)


def split_words(text: str) -> Iterator[str]:
    """Words of a command line: whitespace outside double quotes separates them."""
    word: List[str] = []
    in_quote = False
    for char in text:
        if char in WHITESPACE and not in_quote:
            if word:
                yield "".join(word)
                word = []
            continue
        if char == '"':
            in_quote = not in_quote
        word.append(char)
    if word:
        yield "".join(word)


def split_parameter(word: str) -> Optional[Tuple[str, str]]:
    """`(key, value)` of one word, split at the first `=`; None for a flag.

    A leading quote around the whole word (`"key=a b"`) and quotes around the
    value (`key="a b"`) are removed, as the kernel does.
    """
    if word.startswith('"'):
        word = _strip_trailing_quote(word[1:])
    key, sep, value = word.partition("=")
    if not sep or not key:
        return None
    if value.startswith('"'):
        value = _strip_trailing_quote(value[1:])
    return key, value


def _strip_trailing_quote(text: str) -> str:
    return text[:-1] if text.endswith('"') else text
