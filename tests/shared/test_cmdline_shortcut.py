"""The command-line parser's plain-text shortcut agrees with its character walk (Hypothesis).

Kept out of tests/reporter/unit: those also run on the reporter's oldest and newest
Pythons (tests/reporter/test_matrix.py) in venvs with pytest alone."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bos_shared.cmdline import parse_cmdline, split_parameter, split_words


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('ab=" \t\n\r\v\f\0\x1c\x1d\x1e\x1f\x85\xa0\u2028é')), max_size=40))
def test_the_plain_text_shortcut_splits_as_the_character_walk(text: str) -> None:
    """parse_cmdline splits plain ASCII text with str.split(); any text parses as the walk does."""
    walked: dict = {}
    for word in split_words(text):
        pair = split_parameter(word)
        if pair is not None and pair[0] not in walked:
            walked[pair[0]] = pair[1]
    assert parse_cmdline(text) == walked
