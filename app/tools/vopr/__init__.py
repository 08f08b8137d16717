"""Seeded fault simulation shared by `bench/simulate.py` and `tests/sim/` (not used by the app itself)."""
