"""A tiny shop: the code under test of the example suite."""
