"""docs/security.md names the test that keeps each case closed: every test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_the_security_page_names_exists() -> None:
    text = (ROOT / "docs" / "security.md").read_text()
    named = re.findall(r"`(?:(tests/[\w/]+\.py)|(test_\w+\.py))(?:::(\w+))?`", text)
    assert len(named) >= 20, "could not read the test references of docs/security.md"
    current_file = None
    for full, short, test in named:
        path = ROOT / full if full else next(ROOT.glob(f"tests/*/{short}"), None)
        assert path is not None and path.exists(), f"docs/security.md names a missing file: {full or short}"
        current_file = path
        if test:
            source = current_file.read_text()
            # A name ending in "…" elsewhere is shortened; a full name must be defined as written.
            assert f"def {test}(" in source, f"docs/security.md names {test}, which {path.name} does not define"
    shortened = re.findall(r"`…(_\w+)`", text)
    tests_text = "\n".join(p.read_text() for p in ROOT.glob("tests/*/test_*.py"))
    for tail in shortened:
        assert re.search(rf"def test_\w*{re.escape(tail)}\(", tests_text), f"no test ends with {tail}"
