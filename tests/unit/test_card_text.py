"""Text a requester wrote reaches a Teams card inert: no link, emphasis or list, and names stay readable."""

from __future__ import annotations

import pytest

from jit.adapters.notify.render import inert


@pytest.mark.parametrize(
    ("written", "on_the_card"),
    [
        ("Fix [this](https://evil.example) **now**", r"Fix \[this\]\(https://evil.example\) \*\*now\*\*"),
        ("_under_ `code` <b>", r"\_under\_ \`code\` \<b\>"),
        ("- a list\n1. numbered\n  # heading\n12) more", "\\- a list\n1\\. numbered\n  \\# heading\n12\\) more"),
        ("jit-ada@contoso.onmicrosoft.com", "jit-ada@contoso.onmicrosoft.com"),
        ("2026-03-02 11:00 UTC, ticket INC-4711.", "2026-03-02 11:00 UTC, ticket INC-4711."),
    ],
)
def test_markdown_is_escaped_where_it_would_act(written: str, on_the_card: str) -> None:
    assert inert(written) == on_the_card
