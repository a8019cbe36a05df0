"""cocotb 2.x test module for tc_adder.v (run by tests/test_toolchain.py via cocotb's
Python runner; deliberately not named test_*.py so pytest does not collect it)."""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

W = 8


@cocotb.test()
async def adder_stream_with_backpressure(dut):
    rng = random.Random(1234)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())

    dut.rst.value = 1
    dut.in_valid.value = 0
    dut.out_ready.value = 0
    dut.a.value = 0
    dut.b.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    items = [(rng.randrange(1 << W), rng.randrange(1 << W)) for _ in range(200)]
    items += [((1 << W) - 1, (1 << W) - 1), (0, 0)]
    expected = [a + b for a, b in items]
    got = []
    sent = 0
    stalls = 0
    for _cycle in range(20 * len(items)):
        if len(got) == len(expected):
            break
        # Drive on the falling edge, then look at the settled values: the handshakes
        # seen here are the ones the next rising edge will complete.
        await FallingEdge(dut.clk)
        valid = sent < len(items) and rng.random() < 0.7
        dut.in_valid.value = int(valid)
        if valid:
            dut.a.value, dut.b.value = items[sent]
        dut.out_ready.value = int(rng.random() < 0.6)
        await ReadOnly()
        if dut.out_valid.value == 1 and dut.out_ready.value == 1:
            got.append(int(dut.sum.value))
        if dut.out_valid.value == 1 and dut.out_ready.value == 0:
            stalls += 1
            assert dut.in_ready.value == 0, "in_ready must drop while output is stalled"
        if valid and dut.in_ready.value == 1:
            sent += 1

    assert got == expected, f"got {len(got)} results, first mismatch at " + str(
        next((i for i, (g, e) in enumerate(zip(got, expected)) if g != e), None)
    )
    assert stalls > 0, "backpressure was never exercised"
    dut._log.info("%d sums checked, %d stall cycles", len(got), stalls)
