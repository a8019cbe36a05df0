"""Hand-made hardware graphs with random parameters for the RTL tests, and their golden
vectors (no checkpoint, no lowering: every node's arrays are drawn at random with stream
widths computed from exact value ranges, so the golden model is the only reference).

Thresholds are drawn around the accumulator's typical value so both output bits occur,
and a few channels get the edge cases (always 1, always 0, out-of-range thresholds).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from generator.hw import golden
from generator.hw import perf
from generator.hw.ir import (AvgPoolNode, ConvNode, Graph, GlobalSumNode, MaxPoolNode, ResAddNode,
                          ScaleMacNode, Stream, signed_bits)
from generator.hw.streams import write_hex


def _range(s: Stream) -> tuple[int, int]:
    if s.kind == "bit":
        return 0, 1
    if s.kind == "uint":
        return 0, (1 << s.bits) - 1
    return -(1 << (s.bits - 1)), (1 << (s.bits - 1)) - 1


def _out_hw(s: Stream, k: int, stride: int, pad: int) -> tuple[int, int]:
    return (s.h + 2 * pad - k) // stride + 1, (s.w + 2 * pad - k) // stride + 1


def _edge_thresholds(rng, thr, lo, hi):
    """A few channels get thresholds at or beyond the accumulator's range."""
    c = len(thr)
    for idx, val in zip(rng.choice(c, size=min(c, 3), replace=False),
                        (lo - 5, hi + 7, lo)):
        thr[idx] = val
    return thr


def conv(name, inp: Stream, c_out: int, k: int, rng, *, stride=1, pad=0, pe=1, simd=1,
         act="threshold", pad_value=None, frac_bits=3, directions="mixed") -> ConvNode:
    oh, ow = _out_hw(inp, k, stride, pad)
    K = k * k * inp.c
    if inp.kind == "bit":
        matrix = "xnor"
        w = rng.integers(0, 2, (c_out, K), dtype=np.uint8)
        lo, hi = -K, K
        typical = np.zeros(c_out)
        spread = max(1.0, np.sqrt(K))
        pv = int(rng.integers(0, 2)) if pad_value is None else pad_value
    else:
        matrix = "int8"
        w = rng.integers(-127, 128, (c_out, K)).astype(np.int8)
        wl = w.astype(np.int64)
        lo = int((np.where(wl < 0, wl, 0).sum(axis=1) * 255).min())
        hi = int((np.where(wl > 0, wl, 0).sum(axis=1) * 255).max())
        typical = 127.5 * wl.sum(axis=1)
        spread = 128 * np.sqrt((wl ** 2).sum(axis=1) / 3)
        pv = 0 if pad_value is None else pad_value
    acc_bits = signed_bits(lo, hi)
    node = ConvNode(name, inp, None, pe=pe, simd=simd, k=k, stride=stride, pad=pad,
                    pad_value=pv, matrix=matrix, weights=w, acc_bits=acc_bits, act=act)
    if act == "threshold":
        thr = np.round(typical + rng.normal(size=c_out) * spread * 0.5).astype(np.int64)
        thr = _edge_thresholds(rng, thr, lo, hi)
        if directions == "mixed":
            d = rng.choice([-1, 1], size=c_out).astype(np.int8)
        else:
            d = np.ones(c_out, np.int8)
        node.thresholds, node.direction = thr, d
        node.thr_bits = signed_bits(int(thr.min()), int(thr.max()))
        node.out = Stream(oh, ow, c_out, "bit", 1)
    else:
        sign = rng.choice([-1, 1], size=c_out).astype(np.int8)
        off = np.round(rng.normal(size=c_out) * spread * (1 << frac_bits)).astype(np.int64)
        node.sign, node.offset, node.frac_bits = sign, off, frac_bits
        s64 = sign.astype(np.int64)
        top = int(np.max(np.maximum(s64 * hi, s64 * lo) * (1 << frac_bits) + off))
        node.out = Stream(oh, ow, c_out, "int", signed_bits(0, max(top, 1)))
    return node


def maxpool(name, inp: Stream, k: int, rng, *, stride=None, pad=0) -> MaxPoolNode:
    stride = stride or k
    oh, ow = _out_hw(inp, k, stride, pad)
    inv = rng.integers(0, 2, inp.c, dtype=np.uint8)
    return MaxPoolNode(name, inp, Stream(oh, ow, inp.c, inp.kind, inp.bits), k=k, stride=stride,
                       pad=pad, invert=inv)


def avgpool(name, inp: Stream, k: int, rng, *, stride=None, pad=0, typical=None) -> AvgPoolNode:
    stride = stride or k
    oh, ow = _out_hw(inp, k, stride, pad)
    lo, hi = _range(inp)
    kk = k * k
    smin, smax = min(0, lo * kk), hi * kk
    t = np.asarray(typical if typical is not None else np.full(inp.c, (smin + smax) / 4))
    thr = np.round(t * (0.5 + rng.random(inp.c))).astype(np.int64)
    thr = _edge_thresholds(rng, thr, smin, smax)
    d = rng.choice([-1, 1], size=inp.c).astype(np.int8)
    return AvgPoolNode(name, inp, Stream(oh, ow, inp.c, "bit", 1), k=k, stride=stride, pad=pad,
                       sum_bits=signed_bits(smin, smax), thresholds=thr, direction=d,
                       thr_bits=signed_bits(int(thr.min()), int(thr.max())))


def _scalemac_bounds(node_w, scales, n, inp: Stream):
    lo, hi = _range(inp)
    wl = node_w.astype(np.int64)
    c_out = wl.shape[0]
    groups = wl.shape[1] // n
    scales = np.tile(scales, groups // len(scales))       # per tap of a k x k window
    pmax = (np.maximum(wl * hi, wl * lo)).reshape(c_out, groups, n).sum(axis=2)
    pmin = (np.minimum(wl * hi, wl * lo)).reshape(c_out, groups, n).sum(axis=2)
    zmax = int((pmax * scales).sum(axis=1).max())
    zmin = int((pmin * scales).sum(axis=1).min())
    bias_bound = (abs(zmin) + abs(zmax)) // 4
    assert max(abs(zmin), abs(zmax)) < 1 << 60, "keep test graphs within int64"
    return pmin, pmax, zmin - bias_bound, zmax + bias_bound, bias_bound


def scalemac(name, inp: Stream, c_out: int, n: int, rng, *, pe=1, simd=1, relu=True,
             scale_bits=12, w_max=127, k=1, stride=1) -> ScaleMacNode:
    """k x k unpadded window (k = inp.h: a linear layer on the flattened map)."""
    w = rng.integers(-w_max, w_max + 1, (c_out, k * k * inp.c)).astype(np.int8)
    groups = inp.c // n
    scales = rng.integers(1, 1 << scale_bits, groups).astype(np.int64)
    pmin, pmax, zmin, zmax, bb = _scalemac_bounds(w, scales, n, inp)
    bias = rng.integers(-bb, bb + 1, c_out).astype(np.int64)
    out_bits = signed_bits(0 if relu else zmin, zmax)
    oh, ow = _out_hw(inp, k, stride, 0)
    return ScaleMacNode(name, inp, Stream(oh, ow, c_out, "int", out_bits), pe=pe, k=k,
                        stride=stride, simd=simd, n=n, weights=w, scales=scales, scale_bits=scale_bits,
                        bias=bias, relu=relu,
                        group_bits=signed_bits(int(pmin.min()), int(pmax.max())),
                        acc_bits=signed_bits(zmin, zmax))


def globalsum(name, inp: Stream) -> GlobalSumNode:
    lo, hi = _range(inp)
    n = inp.h * inp.w
    return GlobalSumNode(name, inp, Stream(1, 1, inp.c, "int", signed_bits(min(0, lo * n), hi * n)))


def random_input(stream: Stream, frames: int, rng, full_range: bool = False) -> np.ndarray:
    """uint8 pixels, random bits, or ints: by default non-negative and in the lower part
    of the range (like ReLU outputs); full_range draws over the stream's whole range."""
    lo, hi = _range(stream)
    if stream.kind == "uint" and stream.bits == 8:
        return rng.integers(0, 256, (frames, stream.h, stream.w, stream.c), dtype=np.uint8)
    if stream.kind == "int" and not full_range:
        hi = min(hi, (1 << max(1, stream.bits - 3)))
        lo = 0
    return rng.integers(lo, hi + 1, (frames, stream.h, stream.w, stream.c)).astype(np.int64)


def write_vectors(graph: Graph, out: Path, frames: int, seed: int = 0,
                  full_range: bool = False, x: np.ndarray | None = None) -> list[np.ndarray]:
    """OUT/graph.*, OUT/vectors/input.hex and <node>.hex from the golden model
    (input: `x` when given, else `frames` random frames)."""
    rng = np.random.default_rng(seed)
    out = Path(out)
    vec = out / "vectors"
    vec.mkdir(parents=True, exist_ok=True)
    graph.save(out)
    if x is None:
        x = random_input(graph.input, frames, rng, full_range)
    frames = len(x)
    write_hex(vec / "input.hex", x, graph.input)
    outs = []
    vals = {"": x}
    for i, node in enumerate(graph.nodes):
        y = golden.run_node(node, *(vals[s] for s in graph.sources(i)))
        vals[node.name] = y
        outs.append(y)
        write_hex(vec / f"{node.name}.hex", y, node.out)
    (vec / "meta.json").write_text(json.dumps(
        {"frames": frames, "nodes": [n.name for n in graph.nodes], "output": graph.nodes[-1].name}))
    return outs


def chain(nodes, name="test") -> Graph:
    return Graph(name, nodes, nodes[0].inp, 1.0, nodes[-1].out.c)


# foldings of brief_chain measured against RTL simulation and Yosys (tests/test_fold.py's slow
# test; bench/calibrate.py fits the cost model to the same designs)
BRIEF_CHAIN_FOLDINGS = {
    # the chain's small default folding, and a wider one
    "narrow": {"conv1": (1, 3), "conv2": (2, 4), "conv3": (1, 4), "conv4": (2, 4), "fc": (1, 2)},
    "wide": {"conv1": (4, 3), "conv2": (8, 8), "conv3": (4, 16), "conv4": (4, 16), "fc": (2, 4)},
    # tap-parallel convs (cf_widen): conv1 3 taps x 3 channels (SF 3), conv2 3 taps x 8
    # channels replayed NF = 8 times (the slowest node)
    "taps": {"conv1": (4, 9), "conv2": (2, 24), "conv3": (2, 8), "conv4": (2, 8), "fc": (1, 4)},
}


def brief_chain(rng, hw=8, c=(8, 16, 16, 16, 16), fold=None) -> Graph:
    """int8 conv k3 p1 threshold -> xnor conv k3 p1 threshold -> maxpool k2 -> xnor conv k1
    relu_offset -> avgpool k3 s2 p1 threshold -> xnor conv k1 relu_offset -> scalemac ->
    globalsum, on hw x hw x 3 uint8 images. fold: {node name: (pe, simd)}."""
    fold = fold or {}

    def f(name, default):
        return dict(zip(("pe", "simd"), fold.get(name, default)))

    c1, c2, c3, c4, c5 = c
    inp = Stream(hw, hw, 3, "uint", 8)
    n1 = conv("conv1", inp, c1, 3, rng, pad=1, **f("conv1", (2, 3)))
    n2 = conv("conv2", n1.out, c2, 3, rng, pad=1, pad_value=0, **f("conv2", (4, 8)))
    n3 = maxpool("pool1", n2.out, 2, rng)
    n4 = conv("conv3", n3.out, c3, 1, rng, act="relu_offset", **f("conv3", (2, 8)))
    # typical window sum of the relu outputs: estimate from a quick golden pass later
    n5 = avgpool("pool2", n4.out, 3, rng, stride=2, pad=1)
    n6 = conv("conv4", n5.out, c4, 1, rng, act="relu_offset", **f("conv4", (4, 4)))
    n7 = scalemac("fc", n6.out, c5, 4, rng, **f("fc", (2, 2)))
    n8 = globalsum("gsum", n7.out)
    g = chain([n1, n2, n3, n4, n5, n6, n7, n8], "brief_chain")
    calibrate(g, rng)
    return g


def vgg_head_chain(rng, hw=8, c=(8, 16, 10), head="linear", pool_pad=0, fold=None) -> Graph:
    """The heads users write first: int8 conv k3 p1 threshold -> xnor conv k3 p1 relu_offset
    -> integer max-pool k2 (random channels pool the minimum; padded when pool_pad) ->
    scale MAC as a linear layer on the flattened map (head "linear": k = map size) or as
    an unpadded 2x2 conv followed by the global sum (head "conv")."""
    fold = fold or {}

    def f(name, default):
        return dict(zip(("pe", "simd"), fold.get(name, default)))

    c1, c2, c3 = c
    inp = Stream(hw, hw, 3, "uint", 8)
    n1 = conv("conv1", inp, c1, 3, rng, pad=1, **f("conv1", (2, 3)))
    n2 = conv("conv2", n1.out, c2, 3, rng, pad=1, pad_value=0, act="relu_offset",
              **f("conv2", (4, 8)))
    n3 = maxpool("pool", n2.out, 2, rng, pad=pool_pad)
    if head == "linear":
        n4 = scalemac("fc", n3.out, c3, 4, rng, k=n3.out.h, **f("fc", (2, 4)))
        nodes = [n1, n2, n3, n4]
    else:
        n4 = scalemac("fc", n3.out, c3, 4, rng, k=2, **f("fc", (2, 4)))
        nodes = [n1, n2, n3, n4, globalsum("gsum", n4.out)]
    g = chain(nodes, f"vgg_head_{head}")
    calibrate(g, rng)
    return g


def calibrate(graph: Graph, rng, frames: int = 8, full_range: bool = False) -> None:
    """Move avg-pool thresholds and scale-MAC biases to the middle of the values the
    preceding nodes actually produce on random input, so every output bit toggles."""
    vals = {"": random_input(graph.input, frames, rng, full_range)}
    for i, node in enumerate(graph.nodes):
        x, *more = (vals[s] for s in graph.sources(i))
        if isinstance(node, ResAddNode):
            # centre z on the values seen, within the bias range the output width allows
            z = node.ma * x.astype(np.int64) + node.mb * more[0].astype(np.int64)
            med = np.median(z.reshape(-1, z.shape[-1]), axis=0)
            bb = 1 << (node.bias_bits - 1)
            node.bias = np.clip(np.round(-med).astype(np.int64), -bb + 1, bb - 1)
        if isinstance(node, AvgPoolNode):
            sums = golden.avgpool_sum(node, x)
            med = np.median(sums.reshape(-1, sums.shape[-1]), axis=0)
            lo, hi = _range(node.inp)
            kk = node.k * node.k
            node.thresholds = _edge_thresholds(rng, np.round(med).astype(np.int64),
                                               min(0, lo * kk), hi * kk)
            node.thr_bits = signed_bits(int(node.thresholds.min()), int(node.thresholds.max()))
        if isinstance(node, ScaleMacNode):
            *_, bb = _scalemac_bounds(node.weights, node.scales, node.n, node.inp)
            saved = node.bias
            node.bias = np.zeros_like(saved)
            relu, node.relu = node.relu, False
            z = golden.scalemac(node, x)
            node.relu = relu
            med = np.median(z.reshape(-1, z.shape[-1]), axis=0)
            node.bias = np.clip(np.round(-med).astype(np.int64), -bb, bb)
        vals[node.name] = golden.run_node(node, x, *more)


def resadd(name, a: Stream, b: Stream, rng, *, pe=1, simd=1, relu=True, shift=10, m_max=1 << 11,
           body="", short="") -> ResAddNode:
    """Random per-channel multipliers (some negative) and biases; the output width from the
    exact range of z >> shift."""
    c = a.c
    ma = rng.integers(-m_max, m_max + 1, c).astype(np.int64)
    mb = rng.integers(-m_max, m_max + 1, c).astype(np.int64)
    alo, ahi = _range(a)
    blo, bhi = _range(b)
    zlo = np.minimum(ma * alo, ma * ahi) + np.minimum(mb * blo, mb * bhi)
    zhi = np.maximum(ma * alo, ma * ahi) + np.maximum(mb * blo, mb * bhi)
    bb = int(max(np.abs(zlo).max(), np.abs(zhi).max())) // 8
    bias = rng.integers(-bb, bb + 1, c).astype(np.int64)
    zlo, zhi = zlo + bias, zhi + bias
    ylo, yhi = int(zlo.min()) >> shift, int(zhi.max()) >> shift
    if relu:
        ylo = 0
    return ResAddNode(name, a, Stream(a.h, a.w, c, "int", signed_bits(ylo, max(yhi, 1))),
                      simd=simd, inputs=[body, short], inp_b=b, ma=ma, mb=mb, bias=bias,
                      m_bits=signed_bits(int(min(ma.min(), mb.min())), int(max(ma.max(), mb.max()))),
                      bias_bits=signed_bits(int(bias.min()), int(bias.max())),
                      acc_bits=signed_bits(int(zlo.min()), int(zhi.max())), shift=shift, relu=relu)


def residual_chain(rng, hw=8, c=(8, 16), fold=None, classes=10) -> Graph:
    """A residual DAG like the digits ResNet: int8 conv k3 p1 relu_offset (the residual
    stream X0) -> block b1 (identity shortcut: X0 forked to a k=1 threshold, xnor conv k3
    p1, xnor conv k3 p1 relu_offset, and to the add) -> block b2 (stride 2: the body's first
    conv has stride 2, the shortcut is a k1 s2 scale MAC without ReLU) -> global sum ->
    scale MAC on the 1x1 map (the classifier). fold: {node name: (pe, simd)}."""
    fold = fold or {}

    def f(name, default):
        return dict(zip(("pe", "simd"), fold.get(name, default)))

    c1, c2 = c
    inp = Stream(hw, hw, 3, "uint", 8)
    x0 = conv("conv1", inp, c1, 3, rng, pad=1, act="relu_offset", frac_bits=0,
              **f("conv1", (2, 3)))
    t1 = avgpool("b1_t", x0.out, 1, rng)
    t1.simd = f("b1_t", (1, c1))["simd"]
    b1c1 = conv("b1_c1", t1.out, c1, 3, rng, pad=1, **f("b1_c1", (2, c1)))
    b1c2 = conv("b1_c2", b1c1.out, c1, 3, rng, pad=1, act="relu_offset", frac_bits=0,
                **f("b1_c2", (2, c1)))
    b1 = resadd("b1", b1c2.out, x0.out, rng, body="b1_c2", short="conv1", shift=12,
                **f("b1", (1, 2)))
    t2 = avgpool("b2_t", b1.out, 1, rng)
    t2.simd = f("b2_t", (1, c1))["simd"]
    b2c1 = conv("b2_c1", t2.out, c2, 3, rng, stride=2, pad=1, **f("b2_c1", (2, c1)))
    b2c2 = conv("b2_c2", b2c1.out, c2, 3, rng, pad=1, act="relu_offset", frac_bits=0,
                **f("b2_c2", (4, c2)))
    sc = scalemac("b2_sc", b1.out, c2, c1, rng, stride=2, relu=False, scale_bits=2, w_max=31,
                  **f("b2_sc", (2, 2)))
    sc.inputs = ["b1"]
    b2 = resadd("b2", b2c2.out, sc.out, rng, body="b2_c2", short="b2_sc", shift=16,
                **f("b2", (1, 4)))
    gap = globalsum("gap", b2.out)
    fc = scalemac("fc", gap.out, classes, c2, rng, relu=False, scale_bits=2, w_max=15,
                  **f("fc", (2, 4)))
    g = chain([x0, t1, b1c1, b1c2, b1, t2, b2c1, b2c2, sc, b2, gap, fc], "residual_chain")
    calibrate(g, rng)
    perf.size_skip_fifos(g)
    return g.validate()
