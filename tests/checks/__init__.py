"""Unit tests of the built-in checks (facts hand-filled with FactStore.preset)."""
