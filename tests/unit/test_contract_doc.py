"""docs/contract.md lists every rule of docs/rules.md, every file it names exists, and docs/rules.md
is the contract's RULES.md (the numbered reading of the general terms) when that is beside the checkout."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "rules.md"
CONTRACT_RULES = ROOT.parent / "shared" / "contract" / "RULES.md"
DOC = ROOT / "docs" / "contract.md"


def rule_ids(text: str) -> set[str]:
    return set(re.findall(r"`(R\d+(?:\.\d+)?-[a-z-]+)`", text))


def rules_text() -> str:
    """docs/rules.md without its leading comment: the contract's RULES.md, verbatim."""
    text = RULES.read_text()
    assert text.startswith("<!--") and "-->\n" in text, "docs/rules.md opens with the comment naming its source"
    return text.split("-->\n", 1)[1]


def test_every_rule_is_traced() -> None:
    rules = rule_ids(rules_text())
    assert len(rules) > 20  # the whole contract, not an empty or cut copy
    documented = {line.split("|")[1].strip() for line in DOC.read_text().splitlines() if line.startswith("| R")}
    assert rules - documented == set()


def test_the_rules_are_the_contracts() -> None:
    """A changed contract shows: the copy must be brought up to date (and the new rules traced)."""
    if CONTRACT_RULES.exists():
        assert rules_text() == CONTRACT_RULES.read_text(), (
            f"docs/rules.md differs from {CONTRACT_RULES}: copy the contract's rules again (below the comment)")


def test_every_cited_file_exists() -> None:
    cited = re.findall(r"`((?:orchestrator|api|tests)/[^`:]+?)(?:::[^`]*)?`", DOC.read_text())
    assert cited
    missing = [path for path in cited if not (ROOT / path).exists()]
    assert missing == []
