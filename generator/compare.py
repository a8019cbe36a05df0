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
from .ir import AvgPoolNode, ConvNode, Graph, MaxPoolNode
from .model import CFNet, pixels_to_input


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


@torch.no_grad()
def layerwise(graph: Graph, model: CFNet, pixels_nchw: np.ndarray) -> list[dict]:
    """Per-segment bit agreement with the float model (teacher forced)."""
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
            mism = bits != ref
            entry.update(values=int(bits.size), mismatches=int(mism.sum()),
                         near_threshold=int((mism & near).sum()),
                         unexplained=int((mism & ~near).sum()))
        else:
            for name in seg["nodes"]:
                x = golden.run_node(graph.node(name), x)
            got = x.reshape(len(x), -1) * graph.logit_scale
            ref = trace[-1].double().numpy().reshape(len(x), -1)
            scale = max(np.abs(ref).max(), 1e-12)
            entry.update(values=int(got.size), max_rel_error=float(np.abs(got - ref).max() / scale),
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
