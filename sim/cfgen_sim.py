"""cocotb test module for a cfgen RTL build (copied to OUT/sim/ by generator.backends.rtl;
run by `python -m generator.flows.rtlsim OUT`, which builds OUT/sim/cfgen_tb.v around OUT/rtl/).

The DUT wrapper (cfgen_tb) checks every node's output stream against the golden vectors
in hardware (cf_check instances), so the only per-cycle Python work is the AXI-stream
source/sink of cocotbext-axi. Each test also compares the AXI output frames here, beat
by beat, and writes OUT/sim/parts/<test>.json, which generator.flows.rtlsim merges into
OUT/sim/results.json.

Run-time options (environment, set by generator.flows.rtlsim):
  CFGEN_FRAMES         frames for the random-stall test (default 10)
  CFGEN_SEED           random seed (default 1)
  CFGEN_PERF_FRAMES    back-to-back frames for the interval measurement (default 4)
  CFGEN_PATTERN_FRAMES frames per back-pressure pattern (default 2)
  CFGEN_WEIGHT_FLIP    run-time weights only: "WORD:BIT" flips bit BIT of stream word WORD
                       while driving every load (a corruption the status must catch; the
                       tests then fail)

Run-time weights (the manifest's `runtime_weights`, docs/WEIGHTS.md): every test starts by
driving OUT/weights/weights.hex into s_axis_wgt (random gaps, status back-pressure) and
fails unless the two status words equal weights.json's checksum; frames follow. The
simulator's first load also checks that the frame input is held before it; the random-stall
test reloads half way, with frames queued during the reload (they must wait for it).

generator.flows.rtlsim checks the vector files before the simulator starts (generator/flows/vectorcheck.py);
the module-level checks below only stop a hand-started run with a plain message.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

OUT = Path(__file__).resolve().parent.parent
MAN = json.loads((OUT / "rtl" / "manifest.json").read_text())
PARTS = OUT / "sim" / "parts"
PERIOD_NS = 10
MAXF = 64

FRAMES = int(os.environ.get("CFGEN_FRAMES", "10"))
SEED = int(os.environ.get("CFGEN_SEED", "1"))
PERF_FRAMES = max(3, int(os.environ.get("CFGEN_PERF_FRAMES", "4")))
PATTERN_FRAMES = max(1, int(os.environ.get("CFGEN_PATTERN_FRAMES", "2")))

for _name in ("cocotb.cfgen_tb.s_axis", "cocotb.cfgen_tb.m_axis", "cocotb.cfgen_tb.s_axis_wgt",
              "cocotb.cfgen_tb.m_axis_wstat"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def _read_beats(path: Path) -> list[int]:
    return [int(x, 16) for x in path.read_text().split()]


IN_BEATS = MAN["input"]["beats"]
OUT_BEATS = MAN["output"]["beats"]
_IN = _read_beats(OUT / "vectors" / "input.hex")
_EXP = _read_beats(OUT / "vectors" / f"{MAN['output']['node']}.hex")
VEC_FRAMES = len(_IN) // IN_BEATS
if VEC_FRAMES < 1 or len(_IN) % IN_BEATS or len(_EXP) != VEC_FRAMES * OUT_BEATS:
    raise RuntimeError(f"vectors/: {len(_IN)} input beats ({IN_BEATS} per frame) and {len(_EXP)} "
                       f"output beats ({OUT_BEATS} per frame) are not the same whole frames: "
                       f"run python -m generator.flows.rtlsim, which checks them")
INPUT_FRAMES = [_IN[f * IN_BEATS:(f + 1) * IN_BEATS] for f in range(VEC_FRAMES)]
EXPECTED = [_EXP[f * OUT_BEATS:(f + 1) * OUT_BEATS] for f in range(VEC_FRAMES)]
# generous per-frame time limit: 8x the ideal interval plus slack for stalls
FRAME_TIMEOUT_CYCLES = 8 * int(MAN["predicted_interval_cycles"]) + 8 * (IN_BEATS + OUT_BEATS) + 20000

# run-time weights: the stream, the checksum the status must answer, a deliberate corruption
WEIGHTS = MAN.get("weights") if MAN.get("runtime_weights") else None
WORDS: list[int] = []
CHECKSUM: list[int] = []
FLIP = None
if WEIGHTS:
    WORDS = _read_beats(OUT / WEIGHTS["files"]["hex"])
    CHECKSUM = [int(x) for x in json.loads((OUT / WEIGHTS["files"]["manifest"]).read_text())["checksum"]]
    if len(WORDS) != int(WEIGHTS["words"]) or len(CHECKSUM) != 2:
        raise RuntimeError(f"{WEIGHTS['files']['hex']}: {len(WORDS)} words for the build's "
                           f"{WEIGHTS['words']}: run python -m generator.flows.rtlsim, which checks it")
    _flip = os.environ.get("CFGEN_WEIGHT_FLIP", "")
    if _flip:
        _w, _, _b = _flip.partition(":")
        FLIP = (int(_w), int(_b or 0))
        if not (0 <= FLIP[0] < len(WORDS) and 0 <= FLIP[1] < 32):
            raise RuntimeError(f"CFGEN_WEIGHT_FLIP={_flip}: word 0..{len(WORDS) - 1}, bit 0..31")
# a load at 1 word per cycle, with gaps and status back-pressure
LOAD_TIMEOUT_CYCLES = 4 * len(WORDS) + 20000
_STATE = {"loads": 0}         # loads in this simulator process (the first checks the hold)


def in_frame(i: int) -> list[int]:
    return INPUT_FRAMES[i % VEC_FRAMES]


def expected(i: int) -> list[int]:
    return EXPECTED[i % VEC_FRAMES]


class Bench:
    """Clock, reset, AXI source/sink and the checkers of one test."""

    def __init__(self, dut, name: str):
        self.dut, self.name = dut, name
        self.t0 = time.monotonic()
        self.rng = random.Random(f"{SEED}:{name}")
        self.log = dut._log
        self.source = self.sink = None
        self.errors: list[str] = []
        self.frames_checked = 0
        self.beat_mismatches = 0
        self.wsource = self.wsink = None
        self.loads: list[dict] = []

    async def start(self):
        """Clock, reset asserted (so nothing reads X), AXI source/sink, reset released."""
        dut = self.dut
        dut.rst.value = 1
        dut.s_axis_tvalid.value = 0
        dut.s_axis_tlast.value = 0
        dut.s_axis_tdata.value = 0
        dut.m_axis_tready.value = 0
        if WEIGHTS:
            dut.s_axis_wgt_tvalid.value = 0
            dut.s_axis_wgt_tlast.value = 0
            dut.s_axis_wgt_tdata.value = 0
            dut.m_axis_wstat_tready.value = 0
        Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start()
        await ClockCycles(dut.clk, 2)
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst,
                                      byte_lanes=1)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst,
                                  byte_lanes=1)
        if WEIGHTS:
            self.wsource = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_wgt"), dut.clk,
                                           dut.rst, byte_lanes=1)
            self.wsink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_wstat"), dut.clk,
                                       dut.rst, byte_lanes=1)
        await self.reset()
        if WEIGHTS:
            await self.load_weights()

    async def _until(self, cond, cycles: int, what: str) -> bool:
        """Wait up to `cycles` cycles for cond(); an error (and False) when it never holds."""
        for _ in range(cycles):
            if cond():
                return True
            await RisingEdge(self.dut.clk)
        if cond():
            return True
        self.errors.append(f"timed out after {cycles} cycles waiting for {what}")
        return False

    async def load_weights(self, hold_frames=()):
        """Drive weights.hex (CFGEN_WEIGHT_FLIP applied) into s_axis_wgt with random gaps and
        status back-pressure; the status must be weights.json's checksum and `loaded` must
        rise. The simulator's first load checks that the frame input is held before it;
        `hold_frames`: frames queued after the first word (the reload has begun), which must
        not enter before the load completes."""
        dut = self.dut
        first = _STATE["loads"] == 0
        _STATE["loads"] += 1
        words = list(WORDS)
        if FLIP:
            words[FLIP[0]] ^= 1 << FLIP[1]
        self.wsource.set_pause_generator(_bernoulli(self.rng, 0.3))
        self.wsink.set_pause_generator(_bursts(self.rng, 4, 2))
        t0 = self.cycle()
        entry = {"first": first, "held": None}
        if first:
            await ClockCycles(dut.clk, 4)
            entry["held"] = int(dut.weights_loaded.value) == 0 and int(dut.s_axis_tready.value) == 0
            if not entry["held"]:
                self.errors.append("before the first weight load: loaded or s_axis_tready is high")
        if hold_frames:
            self.wsource.send_nowait(AxiStreamFrame(words[:1]))
            await self._until(lambda: int(dut.weights_loaded.value) == 0, 1000,
                              "loaded to fall at a reload's first word")
            beats = int(dut.in_frames.value) * IN_BEATS + int(dut.in_beat.value)
            for i in hold_frames:
                self.send(i)
            await ClockCycles(dut.clk, 64)
            moved = int(dut.in_frames.value) * IN_BEATS + int(dut.in_beat.value) - beats
            entry["held"] = moved == 0 and int(dut.s_axis_tready.value) == 0
            if not entry["held"]:
                self.errors.append(f"during a reload: {moved} input beat(s) accepted before the load")
            words = words[1:]
        self.wsource.send_nowait(AxiStreamFrame(words))
        frame = await with_timeout(self.wsink.recv(compact=False), LOAD_TIMEOUT_CYCLES * PERIOD_NS, "ns")
        status = [int(x) for x in frame.tdata]
        await self._until(lambda: int(dut.weights_loaded.value) == 1, 16, "loaded after the status")
        entry.update({"words": len(WORDS), "cycles": self.cycle() - t0, "status": status,
                      "checksum": CHECKSUM, "ok": status == CHECKSUM,
                      "flipped": list(FLIP) if FLIP else None})
        self.loads.append(entry)
        if status != CHECKSUM:
            self.errors.append(
                f"weight load {len(self.loads)}: status {status}, weights.json's checksum {CHECKSUM}"
                + (f" (word {FLIP[0]} bit {FLIP[1]} flipped: CFGEN_WEIGHT_FLIP)" if FLIP else ""))
        self.progress(f"weights loaded: {len(WORDS)} words in {entry['cycles']} cycles, status "
                      f"{'ok' if status == CHECKSUM else 'WRONG'}")
        self.wsource.clear_pause_generator()
        self.wsink.clear_pause_generator()

    async def reset(self, cycles: int = 4):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    def send(self, index: int):
        self.source.send_nowait(AxiStreamFrame(list(in_frame(index))))

    async def recv(self, index: int, timeout_cycles: int | None = None) -> AxiStreamFrame:
        cyc = timeout_cycles or FRAME_TIMEOUT_CYCLES
        frame = await with_timeout(self.sink.recv(compact=False), cyc * PERIOD_NS, "ns")
        got, exp = [int(x) for x in frame.tdata], expected(index)
        self.frames_checked += 1
        if got != exp:
            bad = [i for i, (g, e) in enumerate(zip(got, exp)) if g != e]
            self.beat_mismatches += len(bad) + abs(len(got) - len(exp))
            self.errors.append(f"frame {index}: {len(bad)} beat(s) differ, {len(got)} beats "
                               f"received for {len(exp)}; first bad beat "
                               f"{bad[0] if bad else min(len(got), len(exp))}")
        return frame

    def cycle(self) -> int:
        return int(self.dut.cycle.value)

    def stamps(self, n: int) -> tuple[list[int], list[int]]:
        tin = [int(self.dut.t_in_first[i % MAXF].value) for i in range(n)]
        tout = [int(self.dut.t_out_last[i % MAXF].value) for i in range(n)]
        return tin, tout

    def checkers(self) -> dict:
        res = {}
        names = [("input", "chk_in")] + [(n["name"], f"chk_n{n['index']}") for n in MAN["nodes"]] \
            + [("m_axis", "chk_out")]
        for name, inst in names:
            h = getattr(self.dut, inst)
            mm = int(h.mismatches.value)
            res[name] = {"beats": int(h.beats.value), "mismatches": mm,
                         "first_bad_beat": int(h.first_bad.value) if mm else None}
        return res

    def progress(self, msg: str):
        self.log.info("[%s %6.1fs cycle %d] %s", self.name, time.monotonic() - self.t0,
                      self.cycle(), msg)

    def finish(self, extra: dict | None = None, streams_checked: bool = True) -> dict:
        """streams_checked False: a test that feeds frames which are not golden (padded
        short frames) reports the checkers but judges by the AXI output alone."""
        chk = self.checkers()
        node_mm = sum(v["mismatches"] for v in chk.values()) if streams_checked else 0
        part = {"test": self.name, "frames_checked": self.frames_checked,
                "beat_mismatches": self.beat_mismatches, "checker_mismatches": node_mm,
                "errors": self.errors, "checkers": chk, "cycles": self.cycle(),
                "wall_s": round(time.monotonic() - self.t0, 3)}
        part.update(extra or {})
        if WEIGHTS:
            part["weight_loads"] = self.loads
        part["passed"] = not self.errors and node_mm == 0
        PARTS.mkdir(parents=True, exist_ok=True)
        (PARTS / f"{self.name}.json").write_text(json.dumps(part, indent=2))
        bad = {k: v for k, v in chk.items() if v["mismatches"]}
        assert not self.errors, "; ".join(self.errors[:5])
        assert node_mm == 0, f"stream checkers saw mismatches: {bad}"
        return part


def _bernoulli(rng: random.Random, p_pause: float):
    while True:
        yield rng.random() < p_pause


def _bursts(rng: random.Random, max_pause: int, max_run: int):
    while True:
        for _ in range(rng.randint(0, max_pause)):
            yield True
        for _ in range(rng.randint(1, max_run)):
            yield False


def _cycle(pattern):
    while True:
        yield from pattern


@cocotb.test()
async def test_latency_interval(dut):
    """Latency of one frame on an idle pipeline, then the interval over back-to-back frames
    (no gaps, no back-pressure). Bit exact."""
    b = Bench(dut, "latency_interval")
    await b.start()
    b.send(0)
    await b.recv(0)
    await ClockCycles(dut.clk, 2)    # the stamp registers update on the edge the sink sampled
    tin, tout = b.stamps(1)
    latency = tout[0] - tin[0]
    b.progress(f"latency {latency} cycles")
    n = PERF_FRAMES
    for i in range(1, n + 1):
        b.send(i)
    for i in range(1, n + 1):
        await b.recv(i)
        b.progress(f"frame {i}/{n} back to back")
    await ClockCycles(dut.clk, 2)
    tin, tout = b.stamps(n + 1)
    gaps = [tout[i + 1] - tout[i] for i in range(1, n)]
    # steady state: skip the first back-to-back frame (pipeline filling)
    interval = (tout[n] - tout[2]) / (n - 2) if n > 2 else gaps[-1]
    in_gaps = [tin[i + 1] - tin[i] for i in range(1, n)]
    b.progress(f"interval {interval:.1f} cycles (output gaps {gaps}, input gaps {in_gaps})")
    b.finish({"latency_cycles": latency, "interval_cycles": interval, "output_gaps": gaps,
              "input_gaps": in_gaps, "perf_frames": n})


@cocotb.test()
async def test_random_stalls(dut):
    """CFGEN_FRAMES frames with random input gaps and random output back-pressure."""
    b = Bench(dut, "random_stalls")
    await b.start()
    b.source.set_pause_generator(_bernoulli(b.rng, 0.3))
    b.sink.set_pause_generator(_bursts(b.rng, 6, 12))
    # run-time weights: reload half way (the frames after it queued during the reload)
    half = FRAMES // 2 if WEIGHTS and FRAMES > 1 else FRAMES
    for i in range(half):
        b.send(i)
    for i in range(half):
        await b.recv(i)
        b.progress(f"frame {i + 1}/{FRAMES} received")
    if half < FRAMES:
        await ClockCycles(dut.clk, 50)
        await b.load_weights(hold_frames=range(half, FRAMES))
    for i in range(half, FRAMES):
        await b.recv(i)
        b.progress(f"frame {i + 1}/{FRAMES} received")
    await ClockCycles(dut.clk, 200)
    assert b.sink.empty(), "extra output frame(s)"
    b.finish({"frames": FRAMES})


@cocotb.test()
async def test_reset_mid_frame(dut):
    """Reset asserted in the middle of an input frame (with frames in flight); then clean
    frames must come out right, none lost or duplicated."""
    b = Bench(dut, "reset_mid_frame")
    await b.start()
    b.send(0)
    b.send(1)
    # wait until frame 1 is half way in (or frame 0 is, for a single-frame vector set)
    target = IN_BEATS + max(1, IN_BEATS // 2)
    limit = b.cycle() + 2 * FRAME_TIMEOUT_CYCLES
    while True:
        done = int(dut.in_frames.value) * IN_BEATS + int(dut.in_beat.value)
        if done >= target or b.cycle() > limit:
            break
        await ClockCycles(dut.clk, 8)
    out_before = int(dut.out_frames.value)
    b.progress(f"asserting reset: {done} input beats in, {out_before} frame(s) out")
    b.source.clear()
    await b.reset(5)
    b.sink.clear()
    for i in range(2):
        b.send(i)
    for i in range(2):
        await b.recv(i)
    await ClockCycles(dut.clk, 200)
    assert b.sink.empty(), "extra output frame(s) after reset"
    b.progress("2 clean frames after reset")
    b.finish({"reset_after_input_beats": done, "frames_out_before_reset": out_before})


@cocotb.test()
async def test_backpressure_patterns(dut):
    """Several back-pressure patterns: every frame arrives once, in order, bit exact."""
    b = Bench(dut, "backpressure_patterns")
    await b.start()
    patterns = {
        "always_ready": None,
        "alternate": lambda: _cycle([True, False]),
        "one_in_8": lambda: _cycle([True] * 7 + [False]),
        "long_stalls": lambda: _bursts(b.rng, 60, 5),
    }
    counts = {}
    for name, gen in patterns.items():
        await b.reset()
        b.sink.set_pause_generator(gen() if gen else None)
        b.source.set_pause_generator(_bernoulli(b.rng, 0.2))
        for i in range(PATTERN_FRAMES):
            b.send(i)
        for i in range(PATTERN_FRAMES):
            await b.recv(i)
        await ClockCycles(dut.clk, 100)
        extra = 0
        while not b.sink.empty():
            b.sink.recv_nowait()
            extra += 1
        if extra:
            b.errors.append(f"pattern {name}: {extra} extra frame(s)")
        out = int(dut.out_frames.value)
        if out != PATTERN_FRAMES:
            b.errors.append(f"pattern {name}: {out} frames out for {PATTERN_FRAMES}")
        counts[name] = out
        # the checkers restart on the next reset: collect them now
        chk = b.checkers()
        bad = {k: v for k, v in chk.items() if v["mismatches"]}
        if bad:
            b.errors.append(f"pattern {name}: stream mismatches {bad}")
        b.progress(f"pattern {name}: {out} frames")
        b.sink.clear_pause_generator()
        b.source.clear_pause_generator()
    b.finish({"patterns": counts, "frames_per_pattern": PATTERN_FRAMES})


@cocotb.test()
async def test_tlast_resync(dut):
    """Input TLAST resynchronisation (docs/CONTRACT.md): packets of the wrong length between good
    frames, with random input gaps and output back-pressure. A short packet (TLAST early) is
    padded to a frame whose output carries TUSER = 1 on its TLAST beat; a long packet (no TLAST
    at the frame boundary) is a good frame followed by a short one; one packet may carry
    several whole frames. Every other output frame is bit exact and in order, nothing is lost
    or extra, and short_frames counts the padded frames. The node checkers see the padded
    frames (not golden), so only the AXI output is judged here."""
    b = Bench(dut, "tlast_resync")
    await b.start()
    b.source.set_pause_generator(_bernoulli(b.rng, 0.2))
    b.sink.set_pause_generator(_bursts(b.rng, 4, 12))
    bn = IN_BEATS
    part = max(1, bn // 2)
    packets, want = [], []            # input packets; expected outputs (vector frame or None)
    packets.append(in_frame(0)); want.append(0)
    if bn > 1:
        packets.append(in_frame(1)[:part]); want.append(None)            # short
        packets.append(in_frame(2)); want.append(2)
        packets.append(in_frame(3) + in_frame(4)[:part]); want += [3, None]  # long
        packets.append(in_frame(1)[:1]); want.append(None)               # one beat
    packets.append(in_frame(5) + in_frame(6)); want += [5, 6]            # two frames, one TLAST
    packets.append(in_frame(7)); want.append(7)
    for pkt in packets:
        b.source.send_nowait(AxiStreamFrame(list(pkt)))
    flagged = 0
    for k, idx in enumerate(want):
        frame = await with_timeout(b.sink.recv(compact=False), FRAME_TIMEOUT_CYCLES * PERIOD_NS, "ns")
        got = [int(x) for x in frame.tdata]
        user = [int(u) for u in frame.tuser] if frame.tuser is not None else []
        b.frames_checked += 1
        if len(got) != OUT_BEATS:
            b.errors.append(f"output frame {k}: {len(got)} beats for {OUT_BEATS}")
        if idx is None:
            flagged += 1
            if user != [0] * (OUT_BEATS - 1) + [1]:
                b.errors.append(f"output frame {k} (padded): TUSER {user}, want 1 on the TLAST beat only")
            continue
        if any(user):
            b.errors.append(f"output frame {k} (vector frame {idx}): TUSER set {user}")
        exp = expected(idx)
        if got != exp:
            bad = [i for i, (g, e) in enumerate(zip(got, exp)) if g != e]
            b.beat_mismatches += len(bad) + abs(len(got) - len(exp))
            b.errors.append(f"output frame {k} (vector frame {idx}): {len(bad)} beat(s) differ")
        b.progress(f"output frame {k + 1}/{len(want)} {'padded' if idx is None else 'exact'}")
    await ClockCycles(dut.clk, 200)
    extra = 0
    while not b.sink.empty():
        b.sink.recv_nowait()
        extra += 1
    if extra:
        b.errors.append(f"{extra} extra output frame(s)")
    short = int(dut.short_frames.value)
    if short != flagged:
        b.errors.append(f"short_frames = {short}, {flagged} packets ended early")
    b.finish({"packets": len(packets), "output_frames": len(want), "padded_frames": flagged,
              "short_frames": short}, streams_checked=False)
