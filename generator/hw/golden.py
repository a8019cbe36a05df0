"""NumPy golden model: executes the hardware graph bit-exactly, node by node.

This is the specification every hardware path is checked against. Values travel as
(N, H, W, C) arrays in hardware order: bits as uint8 0/1 (1 = +1), ints as int64.
XNOR products are computed on bit-packed words with popcount, as the hardware does.
"""

from __future__ import annotations

import numpy as np

from .ir import (AvgPoolNode, ConvNode, Graph, GlobalSumNode, MaxPoolNode, ResAddNode, ScaleMacNode,
                 out_dim)


def sliding_window(x: np.ndarray, k: int, stride: int, pad: int, pad_value: int) -> np.ndarray:
    """(N, H, W, C) -> (N, OH, OW, k*k*C), taps ordered (ky, kx, c)."""
    n, h, w, c = x.shape
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=pad_value)
    oh, ow = out_dim(h, k, stride, pad), out_dim(w, k, stride, pad)
    cols = np.empty((n, oh, ow, k, k, c), dtype=x.dtype)
    for ky in range(k):
        for kx in range(k):
            cols[:, :, :, ky, kx, :] = x[:, ky:ky + stride * oh:stride, kx:kx + stride * ow:stride, :]
    return cols.reshape(n, oh, ow, k * k * c)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """0/1 along the last axis -> little-endian packed bytes (bit j of the vector at byte j//8, bit j%8)."""
    return np.packbits(bits.astype(np.uint8), axis=-1, bitorder="little")


def xnor_dot(x_bits: np.ndarray, w_bits: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """x (..., K) 0/1, w (C_out, K) 0/1 -> dot (..., C_out) = 2*popcount(xnor) - K = K - 2*popcount(xor)."""
    K = x_bits.shape[-1]
    lead = x_bits.shape[:-1]
    xp = pack_bits(x_bits.reshape(-1, K))
    wp = pack_bits(w_bits)
    out = np.empty((xp.shape[0], wp.shape[0]), dtype=np.int64)
    for s in range(0, xp.shape[0], chunk):
        diff = np.bitwise_count(xp[s:s + chunk, None, :] ^ wp[None, :, :]).sum(axis=-1, dtype=np.int64)
        out[s:s + chunk] = K - 2 * diff
    return out.reshape(*lead, wp.shape[0])


def threshold(acc: np.ndarray, tau: np.ndarray, direction: np.ndarray) -> np.ndarray:
    return np.where(direction > 0, acc >= tau, acc <= tau).astype(np.uint8)


def conv_acc(node: ConvNode, x: np.ndarray) -> np.ndarray:
    cols = sliding_window(x, node.k, node.stride, node.pad, node.pad_value)
    if node.matrix == "xnor":
        return xnor_dot(cols, node.weights)
    return cols.astype(np.int64) @ node.weights.astype(np.int64).T


def conv(node: ConvNode, x: np.ndarray) -> np.ndarray:
    acc = conv_acc(node, x)
    if node.act == "threshold":
        return threshold(acc, node.thresholds, node.direction)
    r = node.sign.astype(np.int64) * acc * (1 << node.frac_bits) + node.offset
    return np.maximum(r, 0)


def _pool_windows(x: np.ndarray, k: int, stride: int, pad: int, pad_value: int) -> np.ndarray:
    n, h, w, c = x.shape
    win = sliding_window(x, k, stride, pad, pad_value)
    return win.reshape(*win.shape[:3], k * k, c)


def pool_mask(node: MaxPoolNode) -> np.ndarray:
    """Per channel, the bit pattern XORed onto a value so that max-pool (or, where
    invert[c], min-pool) becomes an unsigned max with 0 as its identity: all ones for an
    inverted channel (order reversed), the sign bit of an int stream (two's complement
    order to unsigned order). A bit stream's mask is invert itself."""
    s = node.inp
    inv = (np.zeros(s.c, np.int64) if node.invert is None
           else np.asarray(node.invert).astype(np.int64) & 1)
    mask = inv * ((1 << s.bits) - 1)
    if s.kind == "int":
        mask = mask ^ (1 << (s.bits - 1))
    return mask


def maxpool(node: MaxPoolNode, x: np.ndarray) -> np.ndarray:
    s = node.inp
    mask = pool_mask(node)
    full = (1 << s.bits) - 1
    # In the masked domain an out-of-image tap is 0, the identity of an unsigned max.
    win = _pool_windows((x.astype(np.int64) & full) ^ mask, node.k, node.stride, node.pad, 0)
    y = win.max(axis=3) ^ mask
    if s.kind == "bit":
        return y.astype(np.uint8)
    if s.kind == "int":
        y = np.where(y >= 1 << (s.bits - 1), y - (1 << s.bits), y)
    return y.astype(np.int64)


def avgpool_sum(node: AvgPoolNode, x: np.ndarray) -> np.ndarray:
    return _pool_windows(x.astype(np.int64), node.k, node.stride, node.pad, 0).sum(axis=3)


def avgpool(node: AvgPoolNode, x: np.ndarray) -> np.ndarray:
    return threshold(avgpool_sum(node, x), node.thresholds, node.direction)


def scalemac(node: ScaleMacNode, x: np.ndarray) -> np.ndarray:
    c_in = x.shape[-1]
    groups, kk = c_in // node.n, node.k * node.k
    cols = sliding_window(x.astype(np.int64), node.k, node.stride, 0, 0)
    w = node.weights.astype(np.int64).reshape(-1, kk, groups, node.n)    # [C_out, KK, G, n]
    xg = cols.reshape(*cols.shape[:-1], kk, groups, node.n)              # [..., KK, G, n]
    partial = np.einsum("...tgi,ktgi->...kg", xg, w)                     # sum_t P[..., k, t, g]
    z = partial @ node.scales.astype(np.int64) + node.bias.astype(np.int64)
    return np.maximum(z, 0) if node.relu else z


def globalsum(node: GlobalSumNode, x: np.ndarray) -> np.ndarray:
    return x.astype(np.int64).sum(axis=(1, 2), keepdims=True)


def resadd(node: ResAddNode, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    z = (node.ma.astype(np.int64) * a.astype(np.int64) + node.mb.astype(np.int64) * b.astype(np.int64)
         + node.bias.astype(np.int64))
    y = z >> node.shift                     # arithmetic shift: floor
    return np.maximum(y, 0) if node.relu else y


EXECUTORS = {"conv": conv, "maxpool": maxpool, "avgpool": avgpool, "scalemac": scalemac,
             "globalsum": globalsum, "resadd": resadd}


def run_node(node, x: np.ndarray, *more: np.ndarray) -> np.ndarray:
    return EXECUTORS[node.kind](node, x, *more)


def run(graph: Graph, pixels: np.ndarray, batch: int = 16) -> list[np.ndarray]:
    """pixels uint8 (N, H, W, C) -> list of every node's output (the per-layer trace), the
    graph executed in node order, each node on its sources' outputs."""
    if pixels.dtype != np.uint8 or pixels.ndim != 4:
        raise ValueError("golden.run takes uint8 pixels shaped (N, H, W, C)")
    outs: list[list[np.ndarray]] = [[] for _ in graph.nodes]
    srcs = [graph.sources(i) for i in range(len(graph.nodes))]
    for s in range(0, len(pixels), batch):
        vals = {"": pixels[s:s + batch]}
        for i, node in enumerate(graph.nodes):
            x = run_node(node, *(vals[n] for n in srcs[i]))
            vals[node.name] = x
            outs[i].append(x)
    return [np.concatenate(o) for o in outs]


def logits(graph: Graph, pixels: np.ndarray) -> np.ndarray:
    """Real-valued logits (N, classes) from the integer outputs."""
    out = run(graph, pixels)[-1]
    return out.reshape(len(pixels), -1).astype(np.float64) * graph.logit_scale


def predict(graph: Graph, pixels: np.ndarray) -> np.ndarray:
    # logit_scale > 0, so the integer outputs rank classes exactly as the logits do.
    return run(graph, pixels)[-1].reshape(len(pixels), -1).argmax(axis=1)
