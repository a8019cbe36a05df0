"""Assertions on generator.flows.rtlsim results shared by the RTL tests."""

from __future__ import annotations


def assert_exact(res):
    """Bit exact, every test passed, and every stream moved."""
    bad = {k: v for k, v in res["per_node"].items() if v["mismatches"]}
    failed = {k: t.get("message", "") for k, t in res["tests"].items() if not t["passed"]}
    assert res["bit_exact"], f"mismatching streams {bad}; failed tests {failed}"
    for name, v in res["per_node"].items():
        assert v["beats"] > 0, f"stream {name} never moved"
