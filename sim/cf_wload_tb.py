"""cocotb bench of the weight loader rtl/cf_wload.v alone (tests/test_runtime_weights_rtl.py).

CFGEN_WLOAD_CASE names a JSON file: the loader's layout ("depths", "chunks", "widths" per
memory, "aw") and a list of "loads", each {"words": [...], "status": [s1, s2]} (the words of
one load and the Fletcher status generator/hw/weights.py gives for them). The bench writes
CFGEN_WLOAD_RESULT (JSON) and fails on the first difference. Scenarios, in one run:

1. power-up: `loaded` low; load 0 with random input gaps and status back-pressure; every
   write must be the next word of the layout (memory, address, data = its chunks), the
   status the expected one, `loaded` high afterwards, s_axis_tready low while the status
   waits;
2. reload (load 1): `loaded` falls at its first word, rises after it;
3. reset half way through load 0: `loaded` stays low and the next load starts at word 0;
4. reset after a completed load: `loaded` stays high.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

CASE = json.loads(Path(os.environ["CFGEN_WLOAD_CASE"]).read_text())
RESULT = Path(os.environ["CFGEN_WLOAD_RESULT"])
PERIOD_NS = 10


def expected_writes(words: list[int]) -> list[tuple[int, int, int]]:
    """(memory, address, word) of every write a load of `words` makes, in order."""
    out, k = [], 0
    for m, (depth, chunks, width) in enumerate(zip(CASE["depths"], CASE["chunks"], CASE["widths"])):
        for a in range(depth):
            v = 0
            for c in range(chunks):
                v |= words[k] << (32 * c)
                k += 1
            out.append((m, a, v & ((1 << width) - 1)))
    assert k == len(words), (k, len(words))
    return out


class Bench:
    def __init__(self, dut):
        self.dut = dut
        self.rng = random.Random(7)
        self.writes: list[tuple[int, int, int]] = []
        self.accepted_while_status = 0

    async def start(self):
        dut = self.dut
        dut.rst.value = 0
        dut.s_axis_tvalid.value = 0
        dut.s_axis_tdata.value = 0
        dut.m_axis_tready.value = 0
        Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start()
        await ClockCycles(dut.clk, 2)
        self.power_up_loaded = int(dut.loaded.value)
        self.src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst,
                                   byte_lanes=1)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst,
                                  byte_lanes=1)
        cocotb.start_soon(self.monitor())
        await self.reset()

    async def reset(self, cycles: int = 3):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def monitor(self):
        """Every write port cycle; words accepted while the status is pending."""
        dut = self.dut
        widths = CASE["widths"]
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            en = int(dut.wr_en.value)
            if en:
                m = en.bit_length() - 1
                if en != 1 << m:
                    self.writes.append((-1, en, 0))          # not one-hot
                else:
                    data = int(dut.wr_data.value) & ((1 << widths[m]) - 1)
                    self.writes.append((m, int(dut.wr_addr.value), data))
            if int(dut.m_axis_tvalid.value) and int(dut.s_axis_tready.value):
                self.accepted_while_status += 1

    def gaps(self):
        self.src.set_pause_generator(iter(lambda: self.rng.random() < 0.35, None))
        self.sink.set_pause_generator(iter(lambda: self.rng.random() < 0.6, None))

    async def load(self, words: list[int], status: list[int], label: str):
        dut = self.dut
        self.writes.clear()
        self.gaps()
        self.src.send_nowait(AxiStreamFrame(list(words)))
        # loaded falls at the first word (a new load) and stays low until the end
        fell = False
        for _ in range(4 * len(words) + 100):
            await RisingEdge(dut.clk)
            if int(dut.loaded.value) == 0:
                fell = True
                break
        assert fell, f"{label}: loaded did not fall at the load's first word"
        frame = await with_timeout(self.sink.recv(compact=False), (8 * len(words) + 2000) * PERIOD_NS, "ns")
        got = [int(x) for x in frame.tdata]
        assert got == status, f"{label}: status {got}, expected {status}"
        await ClockCycles(dut.clk, 2)
        assert int(dut.loaded.value) == 1, f"{label}: loaded low after the status"
        want = expected_writes(words)
        assert self.writes == want, (f"{label}: {len(self.writes)} writes, first difference at "
                                     f"{next((i for i, (g, w) in enumerate(zip(self.writes, want)) if g != w), min(len(self.writes), len(want)))}")
        assert self.accepted_while_status == 0, f"{label}: words accepted while the status waited"


@cocotb.test()
async def wload_scenarios(dut):
    b = Bench(dut)
    await b.start()
    res = {"power_up_loaded": b.power_up_loaded}
    assert b.power_up_loaded == 0, "loaded is high at power-up"
    assert int(dut.loaded.value) == 0, "loaded is high after the first reset"
    loads = CASE["loads"]
    # 1, 2: a load, a reload with other words
    await b.load(loads[0]["words"], loads[0]["status"], "load 0")
    await b.load(loads[1]["words"], loads[1]["status"], "reload")
    res["loads"] = 2
    # 3: reset half way through a load
    words = loads[0]["words"]
    if len(words) > 1:
        b.src.clear_pause_generator()
        half = len(words) // 2
        b.src.send_nowait(AxiStreamFrame(words[:half]))
        await with_timeout(b.src.wait(), 100 * len(words) * PERIOD_NS, "ns")
        await ClockCycles(dut.clk, 3)
        assert int(dut.loaded.value) == 0, "loaded high half way through a load"
        await b.reset()
        await ClockCycles(dut.clk, 3)
        assert int(dut.loaded.value) == 0, "loaded high after a reset cut a load"
        assert b.sink.empty(), "a status after a cut load"
        await b.load(words, loads[0]["status"], "load after a cut one")
        res["cut_load"] = True
    # 4: reset after a completed load keeps loaded
    await b.reset()
    await ClockCycles(dut.clk, 3)
    assert int(dut.loaded.value) == 1, "a reset after a completed load dropped loaded"
    await b.load(loads[1]["words"], loads[1]["status"], "load after a reset")
    res["passed"] = True
    RESULT.write_text(json.dumps(res))
