"""Importable helpers for tests (compensating handlers must be importable by path)."""
