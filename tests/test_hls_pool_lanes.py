"""cf::avgpool_thr folded over channels (SIMD lanes) in C simulation against NumPy.

Each case drives cf::sliding_window -> cf::avgpool_thr with the same SIMD (SIMD = 1, a
divisor of C, and C) on random frames, with random thresholds and directions laid out as
ThresholdAct<SIMD, C/SIMD, TB> (lane l, fold j = channel j*SIMD + l). The reference sums
each channel over the zero-padded window and thresholds it (bit = S >= thr if the
direction is +1, S <= thr if -1). All cases are one g++ program, compiled twice (C-sim
shortcuts and -DCF_SYNTH_PATHS) in parallel; a further compile checks that a SIMD not
dividing C is refused by a static_assert.
"""

from __future__ import annotations

import concurrent.futures
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.hls

REPO = Path(__file__).resolve().parents[1]
FLAGS = ["-std=c++14", "-O1", "-Wall", "-Wextra", "-Wno-unknown-pragmas", "-Werror"]
FRAMES = 2


@dataclass
class Case:
    c: int
    simd: int
    k: int
    stride: int
    pad: int
    bits: int
    signed: bool
    h: int
    w: int
    seed: int
    x: np.ndarray = field(init=False, repr=False)     # (FRAMES, h, w, c)
    thr: np.ndarray = field(init=False, repr=False)   # (c,)
    dirn: np.ndarray = field(init=False, repr=False)  # (c,) +1 / -1

    def __post_init__(self):
        rng = np.random.default_rng(self.seed)
        lo, hi = (-(1 << (self.bits - 1)), 1 << (self.bits - 1)) if self.signed else (0, 1 << self.bits)
        self.x = rng.integers(lo, hi, (FRAMES, self.h, self.w, self.c))
        # Thresholds near a typical window sum (so both output values occur), a few outside.
        kk = self.k * self.k
        self.thr = rng.integers(lo, hi, (self.c, kk)).sum(axis=1) + rng.integers(-1, 2, self.c)
        self.thr[rng.integers(0, self.c)] = kk * hi + 1
        self.dirn = rng.choice([-1, 1], self.c)

    @property
    def id(self) -> str:
        return (f"c{self.c}_simd{self.simd}_k{self.k}s{self.stride}p{self.pad}_"
                f"{'i' if self.signed else 'u'}{self.bits}")

    @property
    def cf(self) -> int:
        return self.c // self.simd

    @property
    def oh(self) -> int:
        return (self.h + 2 * self.pad - self.k) // self.stride + 1

    @property
    def ow(self) -> int:
        return (self.w + 2 * self.pad - self.k) // self.stride + 1

    @property
    def sum_bits(self) -> int:
        """Smallest two's complement width holding every window sum."""
        kk = self.k * self.k
        lo, hi = (-kk << (self.bits - 1), kk * ((1 << (self.bits - 1)) - 1)) if self.signed \
            else (0, kk * ((1 << self.bits) - 1))
        n = 1
        while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
            n += 1
        return n

    @property
    def thr_bits(self) -> int:
        n = 1
        while not (-(1 << (n - 1)) <= self.thr.min() and self.thr.max() <= (1 << (n - 1)) - 1):
            n += 1
        return n

    def sums(self) -> np.ndarray:
        """(FRAMES, oh, ow, c) sums over the zero-padded window."""
        p, k, s = self.pad, self.k, self.stride
        xp = np.pad(self.x, ((0, 0), (p, p), (p, p), (0, 0)))
        out = np.zeros((FRAMES, self.oh, self.ow, self.c), np.int64)
        for ky in range(k):
            for kx in range(k):
                out += xp[:, ky:ky + s * (self.oh - 1) + 1:s, kx:kx + s * (self.ow - 1) + 1:s, :]
        return out

    def reference(self, thr=None, dirn=None) -> np.ndarray:
        thr = self.thr if thr is None else thr
        dirn = self.dirn if dirn is None else dirn
        s = self.sums()
        return np.where(dirn > 0, s >= thr, s <= thr).astype(np.uint8)

    def source(self) -> str:
        """One C++ function running this case: input pixels in, output bits to stdout."""
        c, simd, cf, b, tb = self.c, self.simd, self.cf, self.bits, self.thr_bits
        lane = lambda j, l: j * simd + l  # noqa: E731 - channel of lane l, fold j
        thr = ", ".join("{" + ", ".join(str(int(self.thr[lane(j, l)])) for j in range(cf)) + "}"
                        for l in range(simd))
        dirw = ", ".join(f"{sum(int(self.dirn[lane(j, l)] > 0) << l for l in range(simd))}ull" for j in range(cf))
        xs = ", ".join(str(int(v)) for v in self.x.reshape(-1))
        act_t = f"cf::ThresholdAct<{simd}, {cf}, {tb}>"
        return f"""
static const int x_{self.id}[] = {{{xs}}};
static const {act_t} act_{self.id} = {{{{{thr}}}, {{{dirw}}}}};
static void case_{self.id}() {{
  hls::stream<ap_uint<{c * b}> > pix("pix");
  hls::stream<ap_uint<{simd * b}> > win("win");
  hls::stream<ap_uint<{c}> > out("out");
  for (unsigned p = 0; p < {FRAMES * self.h * self.w}; p++) {{
    ap_uint<{c * b}> v = 0;
    for (unsigned ch = 0; ch < {c}; ch++) v.range(ch * {b} + {b - 1}, ch * {b}) = ap_uint<{b}>(x_{self.id}[p * {c} + ch]);
    pix.write(v);
  }}
  static const cf::rom<{c * b}>::type pad = {{}};
  cf::sliding_window<{self.k}, {self.stride}, {self.pad}, {c}, {self.h}, {self.w}, {b}, {simd}>(pix, win, pad, {FRAMES});
  const unsigned long beats = win.size();
  cf::avgpool_thr<{c}, {simd}, {b}, {'true' if self.signed else 'false'}, {self.k}, {self.oh * self.ow}, {self.sum_bits},
                  {act_t}>(win, out, act_{self.id}, {FRAMES});
  std::printf("case {self.id} beats %lu left %lu\\n", beats, (unsigned long)win.size());
  while (!out.empty()) {{
    const ap_uint<{c}> y = out.read();
    for (unsigned ch = 0; ch < {c}; ch++) std::putchar(y[ch] ? '1' : '0');
    std::putchar('\\n');
  }}
}}
"""


def _cases() -> list[Case]:
    geoms = [  # c, k, stride, pad, bits, signed, h, w, SIMD values
        (6, 3, 2, 1, 4, False, 7, 7, (1, 2, 3, 6)),
        (8, 2, 2, 0, 5, True, 6, 5, (1, 4, 8)),
        (16, 3, 1, 1, 5, False, 5, 5, (1, 8, 16)),   # 80-bit pixels: wide ap_uint paths
        (12, 4, 3, 2, 2, True, 8, 7, (1, 3, 12)),
        (4, 1, 1, 0, 3, False, 3, 4, (1, 2, 4)),     # k = 1: no window (one tap)
    ]
    cs, seed = [], 100
    for c, k, s, p, b, sg, h, w, simds in geoms:
        for simd in simds:
            cs.append(Case(c, simd, k, s, p, b, sg, h, w, seed))
            seed += 1
    return cs


CASES = _cases()


def _tools():
    from generator.flows.csim import find_ap_types, find_cxx
    return find_cxx(), find_ap_types()


def _compile(cxx: str, ap: Path, src: Path, exe: Path | None, extra=()) -> subprocess.CompletedProcess:
    cmd = [cxx, *FLAGS, *extra, f"-I{REPO / 'hls' / 'sim'}", f"-I{REPO / 'hls'}", "-isystem", str(ap), str(src)]
    cmd += ["-o", str(exe)] if exe is not None else ["-fsyntax-only"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def _program(cases) -> str:
    return ("// Generated by tests/test_hls_pool_lanes.py\n#include <cstdio>\n#include \"cf_swg.h\"\n"
            "#include \"cf_pool.h\"\n" + "".join(c.source() for c in cases) +
            "int main() {\n" + "".join(f"  case_{c.id}();\n" for c in cases) + "  return 0;\n}\n")


def _parse(stdout: str) -> dict:
    res, cur = {}, None
    for line in stdout.splitlines():
        m = re.match(r"case (\S+) beats (\d+) left (\d+)$", line)
        if m:
            cur = res[m.group(1)] = {"beats": int(m.group(2)), "left": int(m.group(3)), "rows": []}
        else:
            cur["rows"].append([int(ch) for ch in line])
    return res


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """{'sim' | 'synth': {case id: {'beats', 'left', 'rows'}}}"""
    cxx, ap = _tools()
    d = tmp_path_factory.mktemp("pool_lanes")
    src = d / "pool_lanes.cpp"
    src.write_text(_program(CASES))
    variants = {"sim": (), "synth": ("-DCF_SYNTH_PATHS",)}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        builds = {v: ex.submit(_compile, cxx, ap, src, d / f"bench_{v}", extra) for v, extra in variants.items()}
        out = {}
        for v, fut in builds.items():
            r = fut.result()
            assert r.returncode == 0, f"compile ({v}) failed:\n{r.stderr[-6000:]}"
            assert "warning" not in r.stderr, r.stderr[-3000:]
            p = subprocess.run([str(d / f"bench_{v}")], capture_output=True, text=True, timeout=120)
            assert p.returncode == 0, f"{v}: exit {p.returncode}\n{p.stderr[-2000:]}"
            assert "WARNING" not in p.stderr, p.stderr[-2000:]
            out[v] = _parse(p.stdout)
    return out


def _got(case: Case, res: dict) -> np.ndarray:
    r = res[case.id]
    assert r["beats"] == FRAMES * case.oh * case.ow * case.k * case.k * case.cf, "window beat count"
    assert r["left"] == 0, "avgpool_thr left window beats unread"
    got = np.array(r["rows"], np.uint8)
    assert got.shape == (FRAMES * case.oh * case.ow, case.c), f"output beats {got.shape}"
    return got.reshape(FRAMES, case.oh, case.ow, case.c)


@pytest.mark.parametrize("variant", ["sim", "synth"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_pool_lanes(case: Case, variant: str, runs):
    got = _got(case, runs[variant])
    ref = case.reference()
    bad = np.argwhere(got != ref)
    assert bad.size == 0, (f"{case.id} ({variant}): {len(bad)} of {ref.size} bits differ, first at "
                           f"(frame, oy, ox, c) = {tuple(bad[0])}: got {got[tuple(bad[0])]}, "
                           f"expected {ref[tuple(bad[0])]}")
    # The data must be able to tell a wrong answer: both output values occur.
    assert 0.1 < ref.mean() < 0.9, f"{case.id}: degenerate outputs (mean {ref.mean():.2f})"


def test_wrong_lane_order_is_caught(runs):
    """A unit that read the threshold table with the lanes and folds swapped (channel
    l*CF + j instead of j*SIMD + l), or that emitted the chunks in the wrong order, would
    fail the comparison above on these data."""
    checked = 0
    for case in CASES:
        if not 1 < case.simd < case.c:
            continue
        got = _got(case, runs["sim"])
        # thresholds/directions seen through the transposed layout
        perm = np.array([(ch % case.simd) * case.cf + ch // case.simd for ch in range(case.c)])
        if (case.thr[perm] == case.thr).all() and (case.dirn[perm] == case.dirn).all():
            continue  # the random tables happen to be symmetric under the swap
        assert (case.reference(case.thr[perm], case.dirn[perm]) != got).any(), case.id
        # output chunks reversed
        rev = got.reshape(*got.shape[:3], case.cf, case.simd)[..., ::-1, :].reshape(got.shape)
        assert (rev != case.reference()).any(), case.id
        checked += 1
    assert checked >= 4


def test_simd_must_divide_channels(tmp_path):
    """C % SIMD != 0 is refused at compile time by the static_assert."""
    cxx, ap = _tools()
    src = tmp_path / "bad.cpp"
    src.write_text('#include "cf_pool.h"\n'
                   "static const cf::ThresholdAct<4, 1, 6> act = {{{0}, {0}, {0}, {0}}, {0}};\n"
                   "int main() {\n"
                   "  hls::stream<ap_uint<4 * 3> > in;\n  hls::stream<ap_uint<6> > out;\n"
                   "  cf::avgpool_thr<6, 4, 3, false, 2, 1, 6, cf::ThresholdAct<4, 1, 6> >(in, out, act, 1);\n"
                   "  return 0;\n}\n")
    r = _compile(cxx, ap, src, None)
    assert r.returncode != 0
    assert "SIMD must divide the channels C" in r.stderr, r.stderr[-3000:]
    # The same program with SIMD = 3 (divides 6) compiles: the failure is the rule, not a typo.
    src.write_text(src.read_text().replace("ThresholdAct<4, 1, 6>", "ThresholdAct<3, 2, 6>")
                   .replace("{{{0}, {0}, {0}, {0}}, {0}}", "{{{0, 0}, {0, 0}, {0, 0}}, {0, 0}}")
                   .replace("ap_uint<4 * 3>", "ap_uint<3 * 3>").replace("<6, 4, 3,", "<6, 3, 3,"))
    r = _compile(cxx, ap, src, None)
    assert r.returncode == 0, r.stderr[-3000:]
