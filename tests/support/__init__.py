"""Helpers shared by the tests: a private Redis server and a settable clock."""
