"""C-simulation unit tests of the HLS header library (hls/*.h) against generator/hw/golden.py.

Every case is a small configuration of one unit (random shapes, k 1..5, stride 1..3,
padding, PE/SIMD foldings, widths above 64 bits) fed random frames; its output must equal
the golden model bit for bit. Node-level cases render the node exactly as the backend does
(generator.backends.hls.plan_node / node_header) and compare with golden.run_node; raw
cases drive single units (sliding window taps, raw accumulators, width converters, AXI
adapters, popcount). All cases are compiled into a few test-bench binaries (g++ -std=c++14
-O2 -Wall -Wextra -Werror, ap_types as -isystem) in parallel, cached by source hash in
$CFGEN_HLS_CACHE (default: <tmp>/cfgen-hls-unit-cache).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from generator.hw import golden
from generator.backends import hls
from generator.hw.ir import Stream
from generator.hw.streams import from_beats, to_beats

sys.path.insert(0, str(Path(__file__).parent / "hls_unit_tb"))
import hls_graphs as graphs  # noqa: E402

pytestmark = pytest.mark.hls

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).parent / "hls_unit_tb"
FRAMES = 3
GROUPS = 4
FLAGS = ["-std=c++14", "-O2", "-Wall", "-Wextra", "-Wno-unknown-pragmas", "-Werror"]


# --------------------------------------------------------------------------- cases

def random_values(rng, s: Stream, frames: int) -> np.ndarray:
    shape = (frames, s.h, s.w, s.c)
    if s.kind == "bit":
        return rng.integers(0, 2, shape).astype(np.int64)
    if s.kind == "uint":
        return rng.integers(0, 1 << s.bits, shape).astype(np.int64)
    return rng.integers(-(1 << (s.bits - 1)), 1 << (s.bits - 1), shape).astype(np.int64)


def hex_lines(beats, width: int) -> str:
    d = (width + 3) // 4
    return "".join(f"{int(b):0{d}x}\n" for b in beats)


def pack_rows(rows: np.ndarray, bits: int) -> list[int]:
    """(R, n) values -> R words (value j at bits [j*bits, (j+1)*bits))."""
    return [hls.pack_values(r, bits) for r in rows]


class Case:
    def __init__(self, cid: str, desc: str):
        self.id, self.desc = cid, desc

    source = ""

    def stdin(self, frames: int) -> str:
        raise NotImplementedError

    def check(self, stdout: str, frames: int) -> None:
        raise NotImplementedError


class NodeCase(Case):
    """One graph node rendered by the backend, against golden.run_node."""

    def __init__(self, cid, builder, inp: Stream, seed: int, **kw):
        super().__init__(cid, f"{builder.__name__} {inp.h}x{inp.w}x{inp.c} {inp.kind}{inp.bits} {kw}")
        rng = np.random.default_rng(seed)
        self.x = random_values(rng, inp, FRAMES)
        self.node = builder(rng, cid, inp, self.x, **kw)
        plan = hls.plan_node(self.node, cid)
        self.source = hls.node_header(plan) + (
            f"static int case_{cid}(unsigned frames) {{\n"
            f"  return cf_bench::run<{inp.beat_bits}, {self.node.out.beat_bits}>(node_{cid}, frames, "
            f"{inp.h * inp.w});\n}}\n")

    def stdin(self, frames):
        return hex_lines(to_beats(self.x[:frames], self.node.inp), self.node.inp.beat_bits)

    def check(self, stdout, frames):
        want = golden.run_node(self.node, self.x[:frames])
        beats = [int(t, 16) for t in stdout.split()]
        assert len(beats) == want.size // self.node.out.c, f"{len(beats)} beats out"
        got = from_beats(beats, self.node.out)
        bad = np.argwhere(got != want)
        assert not len(bad), f"{len(bad)} values differ, first at {tuple(bad[0])}: " \
                             f"got {got[tuple(bad[0])]} want {want[tuple(bad[0])]}"


class SwgCase(Case):
    """sliding_window taps (per-channel pad values) against golden.sliding_window; taps = k:
    row taps (one window row of k pixels per beat, kx = 0 lowest)."""

    def __init__(self, cid, k, stride, pad, c, h, w, bits, simd, seed, taps=1):
        super().__init__(cid, f"swg k{k} s{stride} p{pad} {h}x{w}x{c} b{bits} simd{simd} taps{taps}")
        rng = np.random.default_rng(seed)
        self.p = (k, stride, pad, c, h, w, bits, simd)
        self.taps = taps
        self.s = Stream(h, w, c, "uint", bits)
        self.x = random_values(rng, self.s, FRAMES)
        self.padv = rng.integers(0, 1 << bits, c)
        if taps > 1:    # a nonzero pad value in every channel
            self.padv = rng.integers(1, 1 << bits, c) if bits > 1 else np.ones(c, np.int64)
        pb, ob = c * bits, taps * simd * bits
        targs = f", {taps}" if taps > 1 else ""
        self.source = (
            f"static const cf::rom<{pb}>::type swg_{cid}_pad = {hls.rom_literal(hls.pack_values(self.padv, bits), pb)};\n"
            f"static void unit_{cid}(hls::stream<ap_uint<{pb}> >& in, hls::stream<ap_uint<{ob}> >& out, "
            f"unsigned reps) {{\n  cf::sliding_window<{k}, {stride}, {pad}, {c}, {h}, {w}, {bits}, {simd}{targs}>"
            f"(in, out, swg_{cid}_pad, reps);\n}}\n"
            f"static int case_{cid}(unsigned frames) {{ return cf_bench::run<{pb}, {ob}>(unit_{cid}, frames, "
            f"{h * w}); }}\n")

    def stdin(self, frames):
        return hex_lines(to_beats(self.x[:frames], self.s), self.s.beat_bits)

    def check(self, stdout, frames):
        k, stride, pad, c, h, w, bits, simd = self.p
        x = self.x[:frames]
        xp = np.empty((frames, h + 2 * pad, w + 2 * pad, c), np.int64)
        xp[:] = self.padv
        xp[:, pad:pad + h, pad:pad + w, :] = x
        cols = golden.sliding_window(xp, k, stride, 0, 0)
        want = pack_rows(cols.reshape(-1, self.taps * simd), bits)   # taps = k: (oy, ox, ky) row beats
        got = [int(t, 16) for t in stdout.split()]
        assert len(got) == len(want), f"{len(got)} beats, expected {len(want)}"
        bad = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
        assert not bad, f"{len(bad)} taps differ, first beat {bad[0]}"


class MvauCase(Case):
    """mvau with the identity activation: raw accumulators against golden's dot products."""

    def __init__(self, cid, matrix, mw, mh, simd, pe, opix, seed, in_bits=8, in_signed=False,
                 mult=0):
        super().__init__(cid, f"mvau {matrix} {mh}x{mw} simd{simd} pe{pe}")
        rng = np.random.default_rng(seed)
        self.matrix, self.mw, self.mh, self.simd, self.pe, self.opix = matrix, mw, mh, simd, pe, opix
        if matrix == "xnor":
            self.w = rng.integers(0, 2, (mh, mw))
            self.in_bits, kind = 1, "bit"
            self.acc_bits = hls.signed_bits(-mw, mw)
            dot, wb = f"cf::XnorDot<{simd}, {mw}, {self.acc_bits}>", 1
        else:
            self.w = rng.integers(-128, 128, (mh, mw))
            self.in_bits, kind = in_bits, ("int" if in_signed else "uint")
            m = 1 << in_bits
            self.acc_bits = hls.signed_bits(-128 * m * mw, 128 * m * mw)
            dot, wb = (f"cf::IntDot<{simd}, {in_bits}, {'true' if in_signed else 'false'}, 8, "
                       f"{self.acc_bits}, {mult}>"), 8
        self.s = Stream(1, opix, mw, kind, self.in_bits)
        self.x = random_values(rng, self.s, FRAMES)
        if mult:
            # the packed lanes' extremes: every sign pairing of +-127 weights (dsp2 needs
            # [-127, 127]: the packed weight must fit the 25-bit pre-adder) against the
            # largest and smallest inputs
            lo, hi = (-(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1) if in_signed else (0, (1 << in_bits) - 1)
            self.w = rng.choice(np.array([127, -127, 0, 1, -1, 64]), (mh, mw))
            self.x = np.where(rng.random(self.x.shape) < 0.7,
                              rng.choice(np.array([lo, hi]), self.x.shape), self.x)
        words = hls.pack_matrix(self.w, wb, simd, pe)
        ww = simd * wb
        tiles = (mw // simd) * (mh // pe)
        self.source = (
            f"static const cf::rom<{ww}>::type mv_{cid}_w[{pe}][{tiles}] = "
            + hls.c_init(words, lambda v: hls.rom_literal(v, ww)) + ";\n"
            f"static const cf::PassAct<{self.acc_bits}> mv_{cid}_act = {{}};\n"
            f"static void unit_{cid}(hls::stream<ap_uint<{simd * self.in_bits}> >& in, "
            f"hls::stream<ap_uint<{pe * self.acc_bits}> >& out, unsigned reps) {{\n"
            f"  cf::mvau<{mw}, {mh}, {simd}, {pe}, {opix}, {dot}, cf::PassAct<{self.acc_bits}> >"
            f"(in, out, mv_{cid}_w, mv_{cid}_act, reps);\n}}\n"
            f"static int case_{cid}(unsigned frames) {{ return cf_bench::run<{simd * self.in_bits}, "
            f"{pe * self.acc_bits}>(unit_{cid}, frames, {opix * mw // simd}); }}\n")

    def stdin(self, frames):
        chunks = self.x[:frames].reshape(-1, self.simd)
        return hex_lines(pack_rows(chunks, self.in_bits), self.simd * self.in_bits)

    def check(self, stdout, frames):
        x = self.x[:frames].reshape(-1, self.mw)
        if self.matrix == "xnor":
            want = golden.xnor_dot(x.astype(np.uint8), self.w.astype(np.uint8))
        else:
            want = x @ self.w.T
        want = want.reshape(-1, self.mh // self.pe, self.pe).reshape(-1, self.pe)
        exp = pack_rows(want, self.acc_bits)
        got = [int(t, 16) for t in stdout.split()]
        assert got == exp


class DwcCase(Case):
    def __init__(self, cid, in_w, out_w, beats, mode, seed):
        super().__init__(cid, f"dwc {mode} {in_w}->{out_w}")
        rng = np.random.default_rng(seed)
        self.in_w, self.out_w, self.beats, self.mode = in_w, out_w, beats, mode
        self.words = [int.from_bytes(rng.bytes((in_w + 7) // 8), "little") % (1 << in_w)
                      for _ in range(FRAMES * beats)]
        if mode == "split":
            body = f"cf::split_stream<{in_w}, {out_w}, {beats}>(in, out, reps);"
            ow = out_w
        elif mode == "join":
            body = f"cf::join_stream<{in_w}, {out_w}, {beats * in_w // out_w}>(in, out, reps);"
            ow = out_w
        else:  # split then join back
            body = (f"hls::stream<ap_uint<{out_w}> > mid(\"mid\");\n"
                    f"  cf::split_stream<{in_w}, {out_w}, {beats}>(in, mid, reps);\n"
                    f"  cf::join_stream<{out_w}, {in_w}, {beats}>(mid, out, reps);")
            ow = in_w
        self.source = (
            f"static void unit_{cid}(hls::stream<ap_uint<{in_w}> >& in, hls::stream<ap_uint<{ow}> >& out, "
            f"unsigned reps) {{\n  {body}\n}}\n"
            f"static int case_{cid}(unsigned frames) {{ return cf_bench::run<{in_w}, {ow}>(unit_{cid}, frames, "
            f"{beats}); }}\n")

    def stdin(self, frames):
        return hex_lines(self.words[:frames * self.beats], self.in_w)

    def check(self, stdout, frames):
        words = self.words[:frames * self.beats]
        got = [int(t, 16) for t in stdout.split()]
        if self.mode == "split":
            r = self.in_w // self.out_w
            m = (1 << self.out_w) - 1
            exp = [(w >> (j * self.out_w)) & m for w in words for j in range(r)]
        elif self.mode == "join":
            r = self.out_w // self.in_w
            exp = [sum(words[i + j] << (j * self.in_w) for j in range(r)) for i in range(0, len(words), r)]
        else:
            exp = words
        assert got == exp


class WidenCase(Case):
    """widen_taps: R*SF narrow beats per window -> SF wide beats, replayed NF times."""

    def __init__(self, cid, in_w, r, sf, nf, windows, seed):
        super().__init__(cid, f"widen {in_w} bits R{r} SF{sf} NF{nf}")
        rng = np.random.default_rng(seed)
        self.in_w, self.r, self.sf, self.nf, self.windows = in_w, r, sf, nf, windows
        self.words = [int.from_bytes(rng.bytes((in_w + 7) // 8), "little") % (1 << in_w)
                      for _ in range(FRAMES * windows * r * sf)]
        ow = r * in_w
        self.source = (
            f"static void unit_{cid}(hls::stream<ap_uint<{in_w}> >& in, hls::stream<ap_uint<{ow}> >& out, "
            f"unsigned reps) {{\n  cf::widen_taps<{in_w}, {r}, {sf}, {nf}, {windows}>(in, out, reps);\n}}\n"
            f"static int case_{cid}(unsigned frames) {{ return cf_bench::run<{in_w}, {ow}>(unit_{cid}, frames, "
            f"{windows * r * sf}); }}\n")

    def stdin(self, frames):
        return hex_lines(self.words[:frames * self.windows * self.r * self.sf], self.in_w)

    def check(self, stdout, frames):
        r, sf, iw = self.r, self.sf, self.in_w
        words = self.words[:frames * self.windows * r * sf]
        exp = []
        for w0 in range(0, len(words), r * sf):
            win = words[w0:w0 + r * sf]
            wide = [sum(win[s * r + j] << (j * iw) for j in range(r)) for s in range(sf)]
            exp += wide * self.nf
        got = [int(t, 16) for t in stdout.split()]
        assert got == exp


class AxisCase(Case):
    """axis_to_stream -> stream_to_axis. resync: packets of random lengths (short: TLAST
    early, padded, TUSER on the output's TLAST beat; whole frames without TLAST; one beat)
    against the TLAST policy of docs/CONTRACT.md, modelled here beat by beat."""

    def __init__(self, cid, beat, beats, seed, resync=False):
        super().__init__(cid, f"axis {beat} bits, {beats} beats/frame{' resync' if resync else ''}")
        self.seed = seed
        self.beat, self.axi, self.beats, self.resync = beat, hls.axi_bits(beat), beats, resync
        self.source = (f"static int case_{cid}(unsigned frames) {{ return cf_bench::run_axis<{beat}, {self.axi}, "
                       f"{beats}>(frames); }}\n")

    def _word(self, rng):
        return int.from_bytes(rng.bytes((self.beat + 7) // 8), "little") % (1 << self.beat)

    def packets(self, frames):
        """(input beats as (word, tlast), expected output frames as (words, padded))."""
        rng = np.random.default_rng(self.seed)
        beats, want = [], []
        kinds = ["full"] * frames if not self.resync else \
            [("nolast", "short", "one", "full")[k % 4] if self.beats > 1 else ("nolast", "full")[k % 2]
             for k in range(frames)]
        for kind in kinds:
            words = [self._word(rng) for _ in range(self.beats)]
            if kind in ("full", "nolast"):
                beats += [(w, kind == "full" and i == self.beats - 1) for i, w in enumerate(words)]
                want.append((words, False))
            else:
                n = 1 if kind == "one" else int(rng.integers(1, self.beats))
                beats += [(w, i == n - 1) for i, w in enumerate(words[:n])]
                want.append((words[:n] + [0] * (self.beats - n), True))
        return beats, want

    def stdin(self, frames):
        d = (self.beat + 3) // 4
        return "".join(f"{w:0{d}x} {int(last)}\n" for w, last in self.packets(frames)[0])

    def check(self, stdout, frames):
        lines = [ln.split() for ln in stdout.strip().splitlines()]
        want = [(w, padded and i == self.beats - 1) for words, padded in self.packets(frames)[1]
                for i, w in enumerate(words)]
        assert len(lines) == frames * self.beats == len(want)
        nbytes = self.axi // 8
        for i, ((data, keep, strb, last, user), (w, flag)) in enumerate(zip(lines, want)):
            assert int(data, 16) == w, i
            assert int(keep, 16) == int(strb, 16) == (1 << nbytes) - 1
            assert int(last) == (i % self.beats == self.beats - 1)
            assert int(user) == flag, i


class PopcountCase(Case):
    def __init__(self, cid, n, seed):
        super().__init__(cid, f"popcount {n}")
        rng = np.random.default_rng(seed)
        self.n = n
        m = (1 << n) - 1
        self.words = [0, m] + [int.from_bytes(rng.bytes((n + 7) // 8), "little") & m for _ in range(30)]
        self.source = (f"static int case_{cid}(unsigned) {{ return cf_bench::run_popcount<{n}>({len(self.words)}); }}"
                       "\n")

    def stdin(self, frames):
        return hex_lines(self.words, self.n)

    def check(self, stdout, frames):
        got = [tuple(map(int, ln.split())) for ln in stdout.strip().splitlines()]
        assert got == [(bin(w).count("1"),) * 2 for w in self.words]


def _cases() -> list[Case]:
    S = Stream
    cs: list[Case] = []
    seed = iter(range(1000, 2000))
    seed2 = iter(range(3000, 4000))     # new cases: the seeds of the ones above stay put

    def node2(cid, builder, inp, **kw):
        cs.append(NodeCase(cid, builder, inp, next(seed2), **kw))

    def node(cid, builder, inp, **kw):
        cs.append(NodeCase(cid, builder, inp, next(seed), **kw))

    # first layer: uint8 pixels x int8 weights
    node("c_i8_k3", graphs.conv, S(7, 6, 3, "uint", 8), c_out=8, k=3, pad=1, matrix="int8", pe=4, simd=3)
    node("c_i8_k5", graphs.conv, S(9, 9, 3, "uint", 8), c_out=4, k=5, pad=2, matrix="int8", act="relu_offset",
         pe=2, simd=1, frac_bits=5)
    node("c_i8_s2", graphs.conv, S(8, 7, 2, "uint", 8), c_out=8, k=3, stride=2, pad=1, matrix="int8", pe=8, simd=2)
    node("c_i8_k1", graphs.conv, S(4, 5, 3, "uint", 8), c_out=6, k=1, pad=0, matrix="int8", act="relu_offset",
         pe=3, simd=3, frac_bits=0)
    # binary layers
    node("c_x_k3", graphs.conv, S(8, 8, 16, "bit", 1), c_out=16, k=3, pad=1, pe=4, simd=8)
    node("c_x_s2p0", graphs.conv, S(9, 9, 8, "bit", 1), c_out=4, k=3, stride=2, pad=0, pe=2, simd=8)
    node("c_x_k5", graphs.conv, S(6, 6, 8, "bit", 1), c_out=8, k=5, pad=2, act="relu_offset", pe=8, simd=4,
         pad_value=1)
    node("c_x_k1full", graphs.conv, S(4, 4, 32, "bit", 1), c_out=32, k=1, pad=0, pe=32, simd=32)
    node("c_x_k1split", graphs.conv, S(3, 3, 64, "bit", 1), c_out=8, k=1, pad=0, act="relu_offset", pe=1, simd=16,
         frac_bits=8)
    node("c_x_k1s2", graphs.conv, S(7, 7, 8, "bit", 1), c_out=4, k=1, stride=2, pad=0, pe=2, simd=4)
    node("c_x_wide", graphs.conv, S(4, 4, 96, "bit", 1), c_out=32, k=3, pad=1, pe=16, simd=96)
    node("c_x_k2p1", graphs.conv, S(5, 5, 4, "bit", 1), c_out=4, k=2, stride=2, pad=1, pe=2, simd=2)
    node("c_x_s3", graphs.conv, S(10, 8, 2, "bit", 1), c_out=2, k=3, stride=3, pad=1, pe=1, simd=1)
    # tap-parallel: SIMD = m*C_in (sliding_window pixels -> widen_taps -> mvau)
    node("c_i8_taps5", graphs.conv, S(7, 6, 3, "uint", 8), c_out=8, k=5, pad=2, matrix="int8", pe=4, simd=15)
    node("c_i8_taps25", graphs.conv, S(6, 6, 3, "uint", 8), c_out=6, k=5, pad=2, matrix="int8", act="relu_offset",
         pe=2, simd=75, frac_bits=3)
    node("c_x_taps3", graphs.conv, S(6, 5, 8, "bit", 1), c_out=16, k=3, pad=1, pe=4, simd=24, pad_value=1)
    node("c_x_taps9s2", graphs.conv, S(7, 7, 16, "bit", 1), c_out=8, k=3, stride=2, pad=1, pe=8, simd=144)
    # row taps (m a multiple of k: sliding_window<..., TAPS = k> -> widen_taps R = m/k) and the
    # pixel path that remains (k4 with m = 2)
    node2("c_i8_rows3", graphs.conv, S(7, 6, 3, "uint", 8), c_out=8, k=3, pad=1, matrix="int8", pe=4, simd=9,
          pad_value=5)
    node2("c_i8_rows9s2", graphs.conv, S(6, 7, 3, "uint", 8), c_out=6, k=3, stride=2, pad=1, matrix="int8",
          act="relu_offset", pe=3, simd=27, frac_bits=2)
    node2("c_x_rows3", graphs.conv, S(7, 6, 16, "bit", 1), c_out=16, k=3, pad=1, pe=8, simd=48, pad_value=1)
    node2("c_x_k2rows", graphs.conv, S(5, 5, 2, "bit", 1), c_out=4, k=2, stride=2, pad=0, pe=2, simd=4)
    node2("c_x_k4rows", graphs.conv, S(8, 7, 4, "bit", 1), c_out=8, k=4, stride=2, pad=2, pe=4, simd=32,
          pad_value=1)
    node2("c_x_k4px", graphs.conv, S(7, 6, 4, "bit", 1), c_out=8, k=4, pad=1, pe=2, simd=8)
    # pools
    node("mp_k2", graphs.maxpool, S(8, 8, 16, "bit", 1), k=2, stride=2)
    node("mp_k3s2p1", graphs.maxpool, S(9, 9, 8, "bit", 1), k=3, stride=2, pad=1)
    node("mp_wide", graphs.maxpool, S(5, 5, 70, "bit", 1), k=3, stride=1, pad=1)
    node("mp_odd", graphs.maxpool, S(7, 7, 4, "bit", 1), k=2, stride=2)
    node("ap_k3s2p1", graphs.avgpool, S(8, 8, 8, "uint", 9), k=3, stride=2, pad=1)
    node("ap_int", graphs.avgpool, S(6, 6, 4, "int", 5), k=2, stride=2, pad=0)
    node("ap_k4", graphs.avgpool, S(4, 4, 10, "uint", 12), k=4, stride=1, pad=0)
    # per-group scale MAC
    node("sm_simd_lt_n", graphs.scalemac, S(2, 3, 16, "uint", 9), c_out=10, n=4, pe=5, simd=2)
    node("sm_simd_gt_n", graphs.scalemac, S(2, 2, 16, "uint", 7), c_out=4, n=2, pe=2, simd=8)
    node("sm_simd_eq_n", graphs.scalemac, S(1, 3, 32, "uint", 6), c_out=10, n=8, pe=10, simd=8)
    node("sm_n1", graphs.scalemac, S(2, 2, 6, "uint", 4), c_out=3, n=1, pe=1, simd=1)
    node("sm_int", graphs.scalemac, S(3, 1, 8, "int", 6), c_out=4, n=4, pe=2, simd=4, relu=False)
    # global sum
    node("gs_uint", graphs.globalsum, S(4, 4, 10, "uint", 20))
    node("gs_int", graphs.globalsum, S(3, 5, 3, "int", 9))

    for cid, p in [("swg_k3", (3, 1, 1, 4, 5, 6, 2, 2)), ("swg_k5s2", (5, 2, 2, 3, 9, 8, 8, 3)),
                   ("swg_k2", (2, 2, 0, 1, 5, 5, 1, 1)), ("swg_k1s2", (1, 2, 0, 8, 5, 5, 1, 4)),
                   ("swg_k3s3", (3, 3, 0, 2, 10, 9, 3, 1)), ("swg_k1", (1, 1, 0, 6, 3, 4, 4, 2)),
                   ("swg_k3p2", (3, 1, 2, 2, 3, 3, 5, 2))]:
        cs.append(SwgCase(cid, *p, seed=next(seed)))
    # row taps (TAPS = K, SIMD = C): one window row per beat, nonzero pad values
    for cid, p in [("swgr_k3", (3, 1, 1, 3, 5, 6, 8, 3)), ("swgr_k5s2", (5, 2, 2, 3, 9, 8, 8, 3)),
                   ("swgr_k2", (2, 2, 0, 1, 5, 5, 1, 1)), ("swgr_k3s3", (3, 3, 0, 2, 10, 7, 3, 2)),
                   ("swgr_k3p2", (3, 1, 2, 2, 3, 3, 5, 2)), ("swgr_k4s3p3", (4, 3, 3, 2, 7, 11, 4, 2)),
                   ("swgr_k2s1p1", (2, 1, 1, 5, 4, 7, 2, 5)), ("swgr_k3s2wide", (3, 2, 1, 40, 7, 9, 2, 40)),
                   ("swgr_k5s1p1", (5, 1, 1, 1, 6, 13, 1, 1))]:
        cs.append(SwgCase(cid, *p, seed=next(seed2), taps=p[0]))
    cs.append(MvauCase("mv_xnor", "xnor", 96, 8, 32, 4, 5, next(seed)))
    cs.append(MvauCase("mv_xnor_wide", "xnor", 200, 6, 100, 3, 2, next(seed)))
    cs.append(MvauCase("mv_int", "int8", 12, 6, 4, 3, 5, next(seed)))
    cs.append(MvauCase("mv_int_signed", "int8", 10, 4, 5, 1, 3, next(seed), in_bits=5, in_signed=True))
    cs.append(MvauCase("mv_int_dsp2", "int8", 30, 10, 15, 5, 4, next(seed), mult=1))
    cs.append(MvauCase("mv_int_dsp2_signed", "int8", 12, 4, 4, 2, 3, next(seed), in_signed=True, mult=1))
    cs.append(DwcCase("dwc_split", 48, 12, 5, "split", next(seed)))
    cs.append(DwcCase("dwc_join", 8, 24, 6, "join", next(seed)))
    cs.append(DwcCase("dwc_round", 130, 10, 4, "roundtrip", next(seed)))
    cs.append(WidenCase("widen_r3sf3", 24, 3, 3, 1, 5, next(seed)))
    cs.append(WidenCase("widen_replay", 7, 4, 2, 3, 4, next(seed)))
    cs.append(WidenCase("widen_wide", 96, 9, 1, 2, 3, next(seed)))
    cs.append(WidenCase("widen_r1", 72, 1, 3, 1, 5, next(seed2)))      # row taps, m = k: pass-through
    cs.append(WidenCase("widen_r1_replay", 40, 1, 5, 2, 3, next(seed2)))
    cs.append(AxisCase("axis_13", 13, 5, next(seed)))
    cs.append(AxisCase("axis_24", 24, 4, next(seed)))
    cs.append(AxisCase("axis_70", 70, 3, next(seed)))
    cs.append(AxisCase("axis_resync_24", 24, 6, next(seed), resync=True))
    cs.append(AxisCase("axis_resync_1beat", 13, 1, next(seed), resync=True))
    for n in (1, 7, 64, 65, 200):
        cs.append(PopcountCase(f"pc_{n}", n, next(seed)))
    return cs


CASES = _cases()


# --------------------------------------------------------------------------- build

def _ap_types() -> Path:
    from generator.flows.csim import find_ap_types
    return find_ap_types()


def _cxx() -> str:
    from generator.flows.csim import find_cxx
    return find_cxx()


def group_source(cases) -> str:
    body = "\n".join(c.source for c in cases)
    dispatch = "\n".join(f'  if (c == "{c.id}") return case_{c.id}(n);' for c in cases)
    return ("// Generated by tests/test_hls_units.py\n#define AP_INT_MAX_W 4096\n#include \"bench.h\"\n"
            "#include <cstdlib>\n\n" + body +
            "\nint main(int argc, char** argv) {\n  if (argc < 3) return 2;\n  const std::string c = argv[1];\n"
            "  const unsigned n = (unsigned)std::strtoul(argv[2], 0, 10);\n"
            "  if (argc > 3) cf_bench::reps_override() = (unsigned)std::strtoul(argv[3], 0, 10);\n" + dispatch +
            '\n  std::fprintf(stderr, "unknown case %s\\n", c.c_str());\n  return 2;\n}\n')


def _lib_digest() -> str:
    h = hashlib.sha256()
    for p in sorted(list((REPO / "hls").rglob("*.h")) + list(BENCH_DIR.glob("*.h"))):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def build_group(src: str, cxx: str, ap: Path, extra: tuple = ()) -> Path:
    cache = Path(os.environ.get("CFGEN_HLS_CACHE") or Path(tempfile.gettempdir()) / "cfgen-hls-unit-cache")
    flags = FLAGS + list(extra)
    key = hashlib.sha256("\0".join([src, _lib_digest(), cxx, str(ap), " ".join(flags)]).encode()).hexdigest()[:24]
    d = cache / key
    exe = d / "bench"
    if exe.exists():
        return exe
    d.mkdir(parents=True, exist_ok=True)
    (d / "bench.cpp").write_text(src)
    cmd = [cxx, *flags, f"-I{REPO / 'hls' / 'sim'}", f"-I{REPO / 'hls'}", f"-I{BENCH_DIR}", "-isystem", str(ap),
           str(d / "bench.cpp"), "-o", str(d / "bench.tmp")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"compile failed ({' '.join(cmd)}):\n{r.stderr[-6000:]}")
    assert "warning" not in r.stderr, r.stderr[-3000:]
    os.replace(d / "bench.tmp", exe)
    return exe


# Cases also compiled with -DCF_SYNTH_PATHS: the synthesis code paths (adder-tree popcount,
# ap_int bit extraction and MACs) instead of the C-simulation shortcuts (CF_SIM_FAST).
SYNTH_PATH_IDS = ["c_i8_k3", "c_i8_k1", "c_i8_taps5", "c_x_taps3", "swgr_k3", "swgr_k5s2", "swgr_k2",
                  "swgr_k3s3", "swgr_k4s3p3", "swgr_k3s2wide", "c_i8_rows3", "c_x_rows3", "widen_r1", "c_x_k3", "c_x_wide", "mp_wide", "ap_int", "sm_simd_lt_n", "sm_simd_gt_n",
                  "sm_int", "gs_int", "mv_xnor_wide", "mv_int_signed", "mv_int_dsp2", "mv_int_dsp2_signed", "pc_7", "pc_65", "pc_200"]
SYNTH_CASES = [c for c in CASES if c.id in SYNTH_PATH_IDS]


@pytest.fixture(scope="module")
def benches() -> dict:
    """{(case id, 'sim' | 'synth'): test-bench binary}; all groups compiled in parallel."""
    cxx, ap = _cxx(), _ap_types()
    jobs = [(CASES[i::GROUPS], "sim", ()) for i in range(GROUPS)]
    jobs.append((SYNTH_CASES, "synth", ("-DCF_SYNTH_PATHS",)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as ex:
        exes = list(ex.map(lambda j: build_group(group_source(j[0]), cxx, ap, j[2]), jobs))
    return {(c.id, path): exe for (group, path, _), exe in zip(jobs, exes) for c in group}


def _run_case(case: Case, exe: Path, frames: int = FRAMES) -> None:
    r = subprocess.run([str(exe), case.id, str(frames)], input=case.stdin(frames), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, f"{case.desc}: exit {r.returncode}\n{r.stderr[-2000:]}"
    assert "WARNING" not in r.stderr, r.stderr[-2000:]
    case.check(r.stdout, frames)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_unit(case: Case, benches):
    _run_case(case, benches[(case.id, "sim")])


@pytest.mark.parametrize("case", SYNTH_CASES, ids=[c.id for c in SYNTH_CASES])
def test_unit_synthesis_paths(case: Case, benches):
    _run_case(case, benches[(case.id, "synth")])


def test_one_frame_then_more(benches):
    """The same binary with reps = 1 and reps = FRAMES: no state leaks between calls/frames."""
    case = next(c for c in CASES if c.id == "c_x_k3")
    for frames in (1, 2):
        _run_case(case, benches[(case.id, "sim")], frames)


def test_underflow_is_reported(benches):
    """A unit reading more than its producer wrote: the C-sim stream shim stops with a
    clear error (exit 70) instead of hanging or inventing data."""
    case = next(c for c in CASES if c.id == "c_x_k3")
    r = subprocess.run([str(benches[(case.id, "sim")]), case.id, "1", "2"], input=case.stdin(1), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 70, r.stderr
    assert "read while empty" in r.stderr
