"""Random hardware graphs and nodes for the HLS tests (parameters drawn so that every
activation sees both outcomes; widths computed like the IR's: from the actual ranges)."""

from __future__ import annotations

import numpy as np

from generator.hw import golden
from generator.hw.ir import (AvgPoolNode, ConvNode, GlobalSumNode, Graph, MaxPoolNode, ScaleMacNode, Stream,
                          signed_bits, unsigned_bits)


def _odim(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def _vmax(s: Stream) -> int:
    return 1 if s.kind == "bit" else ((1 << s.bits) - 1 if s.kind == "uint" else (1 << (s.bits - 1)) - 1)


def _vmin(s: Stream) -> int:
    return 0 if s.kind != "int" else -(1 << (s.bits - 1))


def conv(rng, name, inp: Stream, x, c_out, k=3, stride=1, pad=1, matrix="xnor", act="threshold", pe=1, simd=1,
         frac_bits=3, pad_value=None):
    """A ConvNode on input values x (N,H,W,C) with thresholds/offsets centred on real accumulators."""
    K = k * k * inp.c
    oh, ow = _odim(inp.h, k, stride, pad), _odim(inp.w, k, stride, pad)
    if matrix == "xnor":
        w = rng.integers(0, 2, (c_out, K)).astype(np.uint8)
        lo, hi = -K, K
    else:
        w = rng.integers(-127, 128, (c_out, K)).astype(np.int8)
        wi = w.astype(np.int64)
        lo = int(np.minimum(wi, 0).sum(1).min()) * _vmax(inp) + int(np.maximum(wi, 0).sum(1).min()) * _vmin(inp)
        hi = int(np.maximum(wi, 0).sum(1).max()) * _vmax(inp) + int(np.minimum(wi, 0).sum(1).max()) * _vmin(inp)
        lo, hi = min(lo, 0), max(hi, 0)
    if pad_value is None:
        pad_value = 0
    node = ConvNode(name=name, inp=inp, out=None, pe=pe, simd=simd, k=k, stride=stride, pad=pad,
                    pad_value=pad_value, matrix=matrix, weights=w, acc_bits=signed_bits(lo, hi), act=act)
    acc = golden.conv_acc(node, x).reshape(-1, c_out)
    pick = acc[rng.integers(0, len(acc), c_out), np.arange(c_out)]
    if act == "threshold":
        node.direction = rng.choice(np.array([-1, 1], np.int8), c_out)
        node.thresholds = (pick + rng.integers(-1, 2, c_out)).astype(np.int64)
        node.thresholds[0] = hi + 1       # constant-0 / extreme thresholds appear in real graphs
        if c_out > 1:
            node.thresholds[1] = lo
        node.thr_bits = signed_bits(int(node.thresholds.min()), int(node.thresholds.max()))
        node.out = Stream(oh, ow, c_out, "bit", 1)
    else:
        node.frac_bits = frac_bits
        node.sign = rng.choice(np.array([-1, 1], np.int8), c_out)
        node.offset = (-(node.sign.astype(np.int64) * pick) * (1 << frac_bits)
                       + rng.integers(-(1 << frac_bits), 1 << frac_bits, c_out)).astype(np.int64)
        rmax = max(abs(lo), abs(hi)) * (1 << frac_bits) + int(node.offset.max())
        node.out = Stream(oh, ow, c_out, "uint", unsigned_bits(max(rmax, 1)))
    return node


def maxpool(rng, name, inp, x, k=2, stride=2, pad=0):
    oh, ow = _odim(inp.h, k, stride, pad), _odim(inp.w, k, stride, pad)
    return MaxPoolNode(name=name, inp=inp, out=Stream(oh, ow, inp.c, "bit", 1), k=k, stride=stride, pad=pad,
                       invert=rng.integers(0, 2, inp.c).astype(np.uint8))


def avgpool(rng, name, inp, x, k=3, stride=2, pad=1):
    oh, ow = _odim(inp.h, k, stride, pad), _odim(inp.w, k, stride, pad)
    node = AvgPoolNode(name=name, inp=inp, out=Stream(oh, ow, inp.c, "bit", 1), k=k, stride=stride, pad=pad,
                       sum_bits=signed_bits(k * k * _vmin(inp), k * k * _vmax(inp)))
    s = golden.avgpool_sum(node, x).reshape(-1, inp.c)
    node.thresholds = s[rng.integers(0, len(s), inp.c), np.arange(inp.c)].astype(np.int64)
    node.direction = rng.choice(np.array([-1, 1], np.int8), inp.c)
    node.thr_bits = signed_bits(int(node.thresholds.min()), int(node.thresholds.max()))
    return node


def scalemac(rng, name, inp, x, c_out, n, pe=1, simd=1, relu=True, scale_bits=12):
    groups = inp.c // n
    w = rng.integers(-127, 128, (c_out, inp.c)).astype(np.int8)
    scales = rng.integers(1, 1 << scale_bits, groups).astype(np.int64)
    vmax = max(_vmax(inp), -_vmin(inp))
    pmax = int(np.abs(w.astype(np.int64)).reshape(c_out, groups, n).sum(-1).max()) * vmax
    bias = rng.integers(-pmax * int(scales.max()), pmax * int(scales.max()) + 1, c_out).astype(np.int64) // 4
    zmax = int((np.abs(w.astype(np.int64)).reshape(c_out, groups, n).sum(-1) * vmax * scales).sum(-1).max()) \
        + int(np.abs(bias).max())
    out = Stream(inp.h, inp.w, c_out, "uint" if relu else "int",
                 unsigned_bits(zmax) if relu else signed_bits(-zmax, zmax))
    return ScaleMacNode(name=name, inp=inp, out=out, pe=pe, simd=simd, n=n, weights=w, scales=scales,
                        scale_bits=scale_bits, bias=bias, relu=relu, group_bits=signed_bits(-pmax, pmax),
                        acc_bits=signed_bits(-zmax, zmax))


def globalsum(rng, name, inp, x):
    pix = inp.h * inp.w
    if inp.kind == "int":
        out = Stream(1, 1, inp.c, "int", signed_bits(pix * _vmin(inp), pix * _vmax(inp)))
    else:
        out = Stream(1, 1, inp.c, "uint", unsigned_bits(pix * _vmax(inp)))
    return GlobalSumNode(name=name, inp=inp, out=out)


def build_chain(rng, specs, inp: Stream, frames: int, name="chain"):
    """specs: list of (builder, name, kwargs). Returns (graph, pixels, golden trace)."""
    pixels = rng.integers(0, 1 << inp.bits, (frames, inp.h, inp.w, inp.c)).astype(np.uint8)
    x, s, nodes = pixels, inp, []
    for builder, nname, kw in specs:
        node = builder(rng, nname, s, x, **kw)
        nodes.append(node)
        x = golden.run_node(node, x)
        s = node.out
    g = Graph(name=name, nodes=nodes, input=inp, logit_scale=1.0, num_classes=s.c)
    return g, pixels, golden.run(g, pixels)


def demo_chain(rng, frames=4, h=8, w=8, c=3, pe_simd=True):
    """The brief's example chain: int8 conv k3 p1 thr -> xnor conv k3 p1 thr -> maxpool k2 ->
    xnor conv k1 relu_offset -> avgpool k3 s2 p1 -> xnor conv k1 relu_offset -> scalemac -> globalsum."""
    f = (lambda a, b: (a, b)) if pe_simd else (lambda a, b: (1, 1))
    specs = [
        (conv, "conv1", dict(c_out=16, k=3, pad=1, matrix="int8", act="threshold", pe=f(4, 1)[0], simd=f(4, c)[1])),
        (conv, "conv2", dict(c_out=32, k=3, pad=1, act="threshold", pe=f(8, 1)[0], simd=f(1, 8)[1])),
        (maxpool, "pool1", dict(k=2, stride=2)),
        (conv, "conv3", dict(c_out=32, k=1, pad=0, act="relu_offset", pe=f(32, 1)[0], simd=f(1, 32)[1])),
        (avgpool, "pool2", dict(k=3, stride=2, pad=1)),
        (conv, "conv4", dict(c_out=16, k=1, pad=0, act="relu_offset", pe=f(4, 1)[0], simd=f(1, 16)[1])),
        (scalemac, "fc", dict(c_out=10, n=4, pe=f(5, 1)[0], simd=f(1, 2)[1])),
        (globalsum, "gsum", {}),
    ]
    return build_chain(rng, specs, Stream(h, w, c, "uint", 8), frames, name="demo")


def write_vectors(out_dir, graph, pixels, trace):
    from pathlib import Path
    from generator.hw.streams import write_hex
    vec = Path(out_dir) / "vectors"
    vec.mkdir(parents=True, exist_ok=True)
    write_hex(vec / "input.hex", pixels, graph.input)
    for node, y in zip(graph.nodes, trace):
        write_hex(vec / f"{node.name}.hex", y, node.out)
    return vec
