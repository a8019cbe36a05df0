"""Agreement of the golden model with the float PyTorch model.

Two views:
- end to end: top-1 agreement and accuracy of golden vs float logits;
- layer-wise (teacher forced): every segment of the graph is fed the float model's own
  binarized input and its output bits are compared with the float model's signs. A
  mismatch is *explained* when the golden pre-threshold value lies within the documented
  rounding bound of the threshold (docs/ARITHMETIC.md); anything else is a bug.
"""

from __future__ import annotations

import numpy as np
import torch

from . import golden
from .ir import AvgPoolNode, ConvNode, GlobalSumNode, Graph, MaxPoolNode, ScaleMacNode
from ..model.network import CFNet, pixels_to_input


def to_nhwc(t: torch.Tensor, h: int, w: int, c: int) -> np.ndarray:
    a = t.detach().double().numpy()
    if a.ndim == 2:  # flattened (c, h, w) features
        a = a.reshape(-1, c, h, w)
    return a.transpose(0, 2, 3, 1)


def _near(node, acc: np.ndarray, tol) -> np.ndarray:
    return np.abs(acc - node.thresholds) <= tol


def segment_near_threshold(graph: Graph, names: list[str], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run a binary segment; return (output bits, near-threshold mask per output bit)."""
    near = None
    for name in names:
        node = graph.node(name)
        if isinstance(node, ConvNode) and node.act == "threshold":
            acc = golden.conv_acc(node, x)
            if node.matrix == "int8":
                tol = _int8_error_bound(node, x) + 1
            else:
                tol = 1  # exact integer arithmetic; float32 evaluation of the chain only
            near = _near(node, acc, tol)
            x = golden.threshold(acc, node.thresholds, node.direction)
        elif isinstance(node, ConvNode):
            x = golden.conv(node, x)
        elif isinstance(node, MaxPoolNode):
            near = golden.maxpool(MaxPoolNode(node.name, node.inp, node.out, k=node.k,
                                              stride=node.stride, pad=node.pad,
                                              invert=np.zeros_like(node.invert)),
                                  near.astype(np.uint8)).astype(bool)
            x = golden.maxpool(node, x)
        elif isinstance(node, AvgPoolNode):
            s = golden.avgpool_sum(node, x)
            # Each rounded offset is off by at most 1/2 LSB: k*k/2 on the sum.
            near = _near(node, s, node.k * node.k / 2 + 1)
            x = golden.threshold(s, node.thresholds, node.direction)
    return x, near


def _int8_error_bound(node: ConvNode, x: np.ndarray) -> np.ndarray:
    """Rigorous per-output bound on |acc(float weights) - acc(int8 weights)| for input x."""
    cols = golden.sliding_window(x, node.k, node.stride, node.pad, node.pad_value)
    return cols.astype(np.float64) @ np.abs(node.weight_error).T


def scalemac_error_bound(node: ScaleMacNode, x: np.ndarray) -> np.ndarray:
    """Rigorous bound on |real z - golden z * out_scale| per output (before ReLU, which is
    1-Lipschitz), from the three rounded quantities: W' to int8 (<= s_w/2), alpha_g to
    Fa fractional bits (<= 2^-(Fa+1)) and each offset to F fractional bits (<= 2^-(F+1))."""
    F, Fa = node.in_frac_bits, node.scale_frac_bits
    kk = node.k * node.k
    sw = node.out_scale * 2.0 ** (F + Fa)
    # over the unit's window (taps (ky, kx, c)); a max-pool before it keeps each r within
    # its rounding (max and min are 1-Lipschitz)
    cols = golden.sliding_window(x.astype(np.float64), node.k, node.stride, 0, 0)
    r = cols / 2 ** F + 2.0 ** -(F + 1)                                # >= the real r
    alpha_hi = np.tile(np.repeat(node.scales / 2 ** Fa + 2.0 ** -(Fa + 1), node.n), kk)
    wq = np.abs(node.weights.astype(np.float64)) * sw
    a_q = np.tile(np.repeat(node.scales / 2 ** Fa, node.n), kk)
    per_o = ((sw / 2) * alpha_hi)[None, :] + wq * 2.0 ** -(Fa + 1)            # [K, C] times r
    return r @ per_o.T + (wq * a_q[None, :]).sum(axis=1) * 2.0 ** -(F + 1) + node.out_scale / 2


def quantize(graph: Graph, node: str, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A real (N, H, W, C) value as the integer stream `node` produces (its format in
    graph.meta['formats']: real = scale * X + shift), rounded and kept in the stream's
    range; and, per value, how far (real units) the range moved it. The range is the
    hardware's worst case: a float value beyond it differs from its hardware value by no
    more than the producing segment's bound, which is what the callers hold it to."""
    f = graph.meta["formats"][node]
    scale = np.asarray(f["scale"])
    x = np.round((v - np.asarray(f["shift"])) / scale)
    xc = np.clip(x, f["lo"], f["hi"])
    return xc.astype(np.int64), np.abs(x - xc) * np.abs(scale)


def _real(graph: Graph, node: str, x: np.ndarray) -> np.ndarray:
    f = graph.meta["formats"][node]
    return x * np.asarray(f["scale"]) + np.asarray(f["shift"])


def _onegroup_bound(node: ScaleMacNode, x: np.ndarray) -> np.ndarray:
    """|real - golden * out_scale| of a one-group scale MAC (a shortcut conv or the
    classifier: real weights per LSB of X W' = s_w * (Wq + e), |e| <= 1/2) on an input X
    within 1/2 LSB of the real one: s_w/2 * sum|X| (the weights) + sum|W'| / 2 (the input,
    |W'| <= s_w (|Wq| + 1/2)) + s_w/2 (the bias)."""
    sw = node.out_scale
    cols = golden.sliding_window(np.abs(x).astype(np.float64), node.k, node.stride, 0, 0)
    wabs = np.abs(node.weights.astype(np.float64)) + 0.5
    return (sw / 2) * cols.sum(axis=-1, keepdims=True) + sw / 2 + 0.5 * sw * wabs.sum(axis=1)


def _bits_entry(bits: np.ndarray, near: np.ndarray, ref: np.ndarray) -> dict:
    """Output bits against the float model's signs: mismatches, those near a threshold
    (explained by the documented rounding) and the rest (must be 0)."""
    mism = bits != ref
    return {"values": int(bits.size), "mismatches": int(mism.sum()),
            "near_threshold": int((mism & near).sum()), "unexplained": int((mism & ~near).sum())}


def _value_entry(got: np.ndarray, ref: np.ndarray, bound: np.ndarray) -> dict:
    err = np.abs(got - ref)
    # float32 evaluation of the model adds a relative error far below the bounds
    slack = 1e-5 * max(float(np.abs(ref).max()), 1e-12)
    return {"values": int(got.size), "max_abs_error": float(err.max()),
            "max_bound": float(np.max(bound)), "beyond_bound": int((err > bound + slack).sum())}


def _dag_segment(graph: Graph, seg: dict, trace: dict, x_pixels: np.ndarray,
                 bounds: dict) -> dict:
    """A segment of a residual graph (lower_residual.py), teacher forced from trace_all.
    bounds: {node: the largest error bound of the segment that produced it}, filled in
    segment order; an input the stream's range moved is explained by it."""
    nodes = [graph.node(n) for n in seg["nodes"]]
    last = nodes[-1]
    o = last.out
    entry = {"nodes": seg["nodes"], "layer": seg["nodes"][0]}

    def value(name, s):
        return to_nhwc(trace[name], s.h, s.w, s.c)

    if seg["out"] == "bits":
        first = nodes[0]
        clipped = None
        if seg.get("in_int"):
            x, moved = quantize(graph, seg["in_int"], value(seg["in_ref"], first.inp))
            clipped = (moved > 0) & (moved <= bounds.get(seg["in_int"], 0.0))
        else:
            x = (value(seg["in_ref"], first.inp) >= 0).astype(np.uint8)
        bits, near = segment_near_threshold(graph, seg["nodes"], x)
        if clipped is not None and len(seg["nodes"]) == 1:
            near = near | clipped       # its float input lies beyond the hardware's range
        ref = (value(seg["out_ref"], o) >= 0).astype(np.uint8)
        entry.update(_bits_entry(bits, near, ref))
        return entry
    if seg["out"] == "int":                 # the first conv's R stream (and its max-pool)
        conv = nodes[0]
        acc_b = _int8_error_bound(conv, x_pixels)
        F = seg["frac_bits"]
        y = golden.conv(conv, x_pixels)
        scale = np.abs(np.asarray(graph.meta["formats"][last.name]["scale"]))
        bound = scale * (2.0 ** F) * (acc_b + 2.0 ** -(F + 1))
        for n in nodes[1:]:                 # a max-pool: 1-Lipschitz, the window's worst bound
            win = golden._pool_windows(bound, n.k, n.stride, n.pad, 0.0)
            bound = win.max(axis=3)
            y = golden.maxpool(n, y)
        entry.update(_value_entry(_real(graph, last.name, y), value(seg["out_ref"], o), bound))
        bounds[last.name] = entry["max_bound"]
        return entry
    if seg["out"] == "residual":
        body = nodes[0]
        bits = (value(seg["body_in_ref"], body.inp) >= 0).astype(np.uint8)
        a = golden.conv(body, bits)
        fin = graph.meta["formats"][seg["in_int"]]
        xq, moved = quantize(graph, seg["in_int"],
                             value(seg["in_ref"], graph.node(seg["in_int"]).out))
        # a float input beyond the range by more than its segment's bound is a bug
        out_of_range = int((moved > bounds.get(seg["in_int"], 0.0)).sum())
        if seg["short_node"]:
            sc = graph.node(seg["short_node"])
            b = golden.scalemac(sc, xq)
            # a moved input: its real difference through the one-group weights
            mv = golden.sliding_window(moved, sc.k, sc.stride, 0, 0.0)
            eb = _onegroup_bound(sc, xq) + mv @ (sc.out_scale * (np.abs(sc.weights.astype(
                np.float64)) + 0.5) / np.tile(np.abs(np.asarray(fin["scale"])), sc.k * sc.k)).T
        else:
            b = xq
            eb = 0.5 * np.abs(np.asarray(fin["scale"])) + moved
        y = golden.resadd(last, a, b)
        # the add: its rounding (1/2 LSB) and its multipliers' (the guard bits) on the
        # output; the body's R rounding (1/2 LSB of R when it has frac bits)
        amax = np.abs(a).max() if a.size else 0
        bmax = np.abs(b).max() if b.size else 0
        s = last.out_scale
        ea = 0.5 * np.abs(a_scale(graph, body)) if body.frac_bits else 0.0
        bound = s * (0.5 + (amax + bmax + 1) * 2.0 ** -(last.shift + 1)) + ea + eb
        entry.update(_value_entry(y * s, value(seg["out_ref"], o), bound))
        entry["beyond_bound"] += out_of_range
        bounds[last.name] = entry["max_bound"]
        return entry
    # logits: the global sum and the one-group classifier
    gap, fc = nodes
    xq, moved = quantize(graph, seg["in_int"], value(seg["in_ref"], gap.inp))
    ssum = golden.globalsum(gap, xq)
    z = golden.scalemac(fc, ssum)
    count = gap.inp.h * gap.inp.w
    bound = _onegroup_bound(fc, ssum).reshape(len(z), -1)
    # the input term: each pixel's quantization (1/2 LSB) averages to 1/2 LSB of the mean,
    # i.e. count/2 LSB of the sum
    wq = np.abs(fc.weights.astype(np.float64)) + 0.5
    bound = bound + 0.5 * fc.out_scale * (count - 1) * wq.sum(axis=1)
    # inputs the stream's range moved: their real difference, averaged, through W
    in_scale = np.abs(np.asarray(graph.meta["formats"][seg["in_int"]]["scale"]))
    bound = bound + (moved.sum(axis=(1, 2)) / in_scale) @ (fc.out_scale * wq).T
    got = z.reshape(len(z), -1) * graph.logit_scale
    ref = trace[seg["out_ref"]].double().numpy().reshape(len(z), -1)
    entry.update(_value_entry(got, ref, bound.reshape(len(z), -1)))
    entry["top1_agreement"] = float((got.argmax(1) == ref.argmax(1)).mean())
    return entry


def a_scale(graph: Graph, node) -> np.ndarray:
    """Real value per LSB of a body's last conv output (its add's a input)."""
    add = next(n for n in graph.nodes if n.kind == "resadd" and n.inputs[0] == node.name)
    return add.ma / 2.0 ** add.shift * add.out_scale


@torch.no_grad()
def layerwise(graph: Graph, model: CFNet, pixels_nchw: np.ndarray) -> list[dict]:
    """Per-segment bit agreement with the float model (teacher forced)."""
    if graph.meta.get("refs") == "names":
        trace = model.trace_all(pixels_to_input(pixels_nchw))
        x_pixels = pixels_nchw.transpose(0, 2, 3, 1).copy()
        bounds: dict = {}
        return [_dag_segment(graph, seg, trace, x_pixels, bounds) for seg in graph.meta["segments"]]
    trace = model.trace(pixels_to_input(pixels_nchw))
    x_pixels = pixels_nchw.transpose(0, 2, 3, 1).copy()
    report = []
    for seg in graph.meta["segments"]:
        first = graph.node(seg["nodes"][0])
        if seg["in_ref"] is None:
            x = x_pixels
        else:
            s = first.inp
            x = (to_nhwc(trace[seg["in_ref"]], s.h, s.w, s.c) >= 0).astype(np.uint8)
        last = graph.node(seg["nodes"][-1])
        entry = {"nodes": seg["nodes"], "layer": seg["nodes"][0]}
        if seg["out"] == "bits":
            bits, near = segment_near_threshold(graph, seg["nodes"], x)
            o = last.out
            ref = (to_nhwc(trace[seg["out_ref"]], o.h, o.w, o.c) >= 0).astype(np.uint8)
            entry.update(_bits_entry(bits, near, ref))
        else:
            bound = None
            for name in seg["nodes"]:
                node = graph.node(name)
                if isinstance(node, ScaleMacNode):
                    bound = scalemac_error_bound(node, x)
                elif isinstance(node, GlobalSumNode):
                    bound = bound.mean(axis=(1, 2), keepdims=True)
                x = golden.run_node(node, x)
            got = x.reshape(len(x), -1) * graph.logit_scale
            ref = trace[-1].double().numpy().reshape(len(x), -1)
            bound = bound.reshape(len(x), -1)
            # float32 evaluation of the model adds a relative error far below the bound.
            slack = 1e-5 * max(float(trace[seg["float_layer"]].abs().max()), 1e-12)
            err = np.abs(got - ref)
            entry.update(values=int(got.size), max_abs_error=float(err.max()),
                         max_bound=float(bound.max()),
                         beyond_bound=int((err > bound + slack).sum()),
                         top1_agreement=float((got.argmax(1) == ref.argmax(1)).mean()))
        report.append(entry)
    return report


@torch.no_grad()
def agreement(graph: Graph, model: CFNet, pixels_nchw: np.ndarray, labels=None) -> dict:
    """End-to-end: float and golden accuracy and top-1 agreement (fractions)."""
    fl = model(pixels_to_input(pixels_nchw)).double().numpy().reshape(len(pixels_nchw), -1)
    gp = golden.predict(graph, pixels_nchw.transpose(0, 2, 3, 1).copy())
    fp = fl.argmax(1)
    out = {"frames": int(len(pixels_nchw)), "agreement": float((fp == gp).mean())}
    if labels is not None:
        out["float_acc"] = float((fp == labels).mean())
        out["golden_acc"] = float((gp == labels).mean())
    return out
