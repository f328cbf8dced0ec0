"""docs/contract.md lists every rule of RULES.md, and every file it names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT.parent / "shared" / "contract" / "RULES.md"
DOC = ROOT / "docs" / "contract.md"


def rule_ids(text: str) -> set[str]:
    return set(re.findall(r"`(R\d+(?:\.\d+)?-[a-z-]+)`", text))


@pytest.mark.skipif(not RULES.exists(), reason="the contract's RULES.md is not beside this checkout")
def test_every_rule_is_traced() -> None:
    documented = {line.split("|")[1].strip() for line in DOC.read_text().splitlines() if line.startswith("| R")}
    assert rule_ids(RULES.read_text()) - documented == set()


def test_every_cited_file_exists() -> None:
    cited = re.findall(r"`((?:orchestrator|api|tests)/[^`:]+?)(?:::[^`]*)?`", DOC.read_text())
    assert cited
    missing = [path for path in cited if not (ROOT / path).exists()]
    assert missing == []
