"""The hosting contract's rules as pure functions over dates, money and records (no I/O).

Each function names the rule it enforces (see docs/contract.md and the contract's RULES.md)."""
