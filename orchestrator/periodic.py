"""Imports every module that registers a periodic task (orchestrator/ticker)."""
