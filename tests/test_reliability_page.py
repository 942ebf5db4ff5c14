"""``docs/reliability.md`` names, for each guarantee, the test that proves it: every test it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "reliability.md"


def test_every_test_the_reliability_page_names_exists() -> None:
    named = set(re.findall(r"`(tests/test_\w+\.py)::(test_\w+)`", PAGE.read_text(encoding="utf-8")))
    assert len(named) >= 30
    missing = []
    for file, test in sorted(named):
        tree = ast.parse((ROOT / file).read_text(encoding="utf-8"))
        functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        if test not in functions:
            missing.append(f"{file}::{test}")
    assert missing == []
