"""Lower a checkpoint to the hardware graph and streamline it.

Streamlining folds everything between two matrix layers into integer parameters:
- into a threshold on the accumulator when the chain ends in the next layer's sign
  (bias, alpha_g, BN, ReLU, max-pool: all per-channel monotone; exact, see ARITHMETIC.md);
- into r = max(0, +-acc*2^F + B) and a threshold on the window sum for an average pool;
- into the per-group scale MAC unit when XNOR-CF outputs feed a full-precision layer.
The thresholds are found by bisection on the integer accumulator of the real-valued
chain evaluated in float64, so any monotone chain (negative gamma, constant outputs)
is handled without case analysis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..model import spec as specmod
from ..model.checkpoint import Checkpoint
from ..core.errors import LoweringError
from .ir import AvgPoolNode, ConvNode, Graph, GlobalSumNode, MaxPoolNode, ScaleMacNode, Stream, out_dim, signed_bits, unsigned_bits

RELU_FRAC_BITS = 8     # F: fractional bits of the ReLU offset before an average pool / scale MAC
SCALE_BITS = 12        # width of the per-group scale alpha_g in the scale MAC unit
INT8_MAX = 127

ELEMENTWISE = ("batchnorm", "relu", "dropout")


@dataclass
class Chain:
    """Per-channel real-valued ops applied to a layer's output y, in order."""
    ops: list   # ("bn", scale, shift) | ("relu",)
    size: int   # channels

    def __call__(self, y: np.ndarray) -> np.ndarray:
        for op in self.ops:
            y = np.maximum(y, 0.0) if op[0] == "relu" else y * op[1] + op[2]
        return y

    def direction(self) -> np.ndarray:
        """+1 where the chain is non-decreasing, -1 where non-increasing (per channel)."""
        d = np.ones(self.size)
        for op in self.ops:
            if op[0] == "bn":
                d = d * np.where(op[1] < 0, -1.0, 1.0)
        return d


def _bn_affine(state: dict, prefix: str, layer: dict) -> tuple[np.ndarray, np.ndarray]:
    mean = state[f"{prefix}.running_mean"].double().numpy()
    var = state[f"{prefix}.running_var"].double().numpy()
    inv = 1.0 / np.sqrt(var + layer["eps"])
    gamma = state[f"{prefix}.weight"].double().numpy() if layer["affine"] else np.ones_like(mean)
    beta = state[f"{prefix}.bias"].double().numpy() if layer["affine"] else np.zeros_like(mean)
    return gamma * inv, beta - gamma * inv * mean


def _first_true(pred, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Smallest integer a in [lo, hi+1] with pred(a) true, per channel; pred non-decreasing."""
    lo, hi = lo.astype(np.int64).copy(), hi.astype(np.int64) + 1
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        ok = pred(mid)
        hi = np.where(ok & (lo < hi), mid, hi)
        lo = np.where(~ok & (lo < hi), mid + 1, lo)
    return lo


def fold_threshold(T, lo: np.ndarray, hi: np.ndarray):
    """Integer threshold of a monotone bit function T(acc) on [lo, hi].

    Returns (tau, direction): bit = acc >= tau (direction +1) or acc <= tau (-1).
    Constant functions become +1 thresholds at lo (always 1) or hi+1 (never 1).
    """
    t_lo, t_hi = T(lo), T(hi)
    dec = t_lo & ~t_hi
    first_on = _first_true(T, lo, hi)                       # increasing channels
    first_off = _first_true(lambda a: ~T(a), lo, hi)        # decreasing channels
    tau = np.where(dec, first_off - 1, first_on)
    tau = np.where(t_lo & t_hi, lo, tau)
    tau = np.where(~t_lo & ~t_hi, hi + 1, tau)
    direction = np.where(dec, -1, 1).astype(np.int8)
    return tau.astype(np.int64), direction


class Lowerer:
    def __init__(self, ckpt: Checkpoint):
        self.ckpt = ckpt
        self.spec = ckpt.spec
        self.layers = self.spec["layers"]
        # state-dict prefix of each layer in self.layers (a residual scope swaps both)
        self.keys = [f"layers.{i}" for i in range(len(self.layers))]
        self.shapes = specmod.shapes(self.spec)
        self.state = {k: v.detach().to(torch.float64) if v.is_floating_point() else v
                      for k, v in ckpt.state_dict.items()}
        self.nodes: list = []
        self.segments: list = []
        self.costs: list = []

    # --- helpers ---------------------------------------------------------
    def param(self, i: int, name: str) -> np.ndarray:
        return self.state[f"{self.keys[i]}.{name}"].numpy()

    def ref(self, i):
        """How a segment names the float model's value of layer i (compare.layerwise): the
        spec index in a chain (CFNet.trace), the layer name in a residual graph
        (CFNet.trace_all); None stays None (pixels)."""
        return i

    def err(self, i: int, msg: str) -> LoweringError:
        return LoweringError(f"layer {self.layers[i]['name']}: {msg}")

    def stream_shape(self, i: int) -> tuple[int, int, int]:
        """(H, W, C) of the stream feeding spec layer i (flatten keeps the pixel layout)."""
        j = i
        while self.layers[j - 1]["type"] == "flatten" if j > 0 else False:
            j -= 1
        shape = self.shapes[j]
        if len(shape) == 1:
            return 1, 1, shape[0]
        c, h, w = shape
        return h, w, c

    def chain(self, idx: list[int], channels: int) -> Chain:
        ops = []
        for i in idx:
            layer = self.layers[i]
            if layer["type"] == "batchnorm":
                if self.param(i, "running_mean").shape[0] != channels:
                    raise self.err(i, "batch norm over flattened features is not per-channel; "
                                      "put it before the flatten")
                scale, shift = _bn_affine(self.state, self.keys[i], layer)
                ops.append(("bn", np.asarray(scale, np.float64), np.asarray(shift, np.float64)))
            elif layer["type"] == "relu":
                ops.append(("relu",))
        return Chain(ops, channels)

    # --- the walk ----------------------------------------------------------
    def matrix_layers(self) -> list[int]:
        return [i for i, l in enumerate(self.layers) if l["type"] in ("conv", "linear")]

    def lower(self) -> Graph:
        mats = self.matrix_layers()
        if not mats or mats[0] != 0 or self.layers[0]["precision"] != "float":
            raise LoweringError("the first layer must be a full-precision conv or linear "
                                "(it reads uint8 pixels)")
        for i in mats:
            if self.layers[i]["precision"] == "bw":
                raise self.err(i, "BW-CF (binary weights, multi-bit activations) has no hardware "
                                  "unit yet; use --mode xnor")
        c, h, w = self.shapes[0]
        inp = Stream(h, w, c, "uint", 8)
        stream = inp
        k = 0
        while k < len(mats):
            i = mats[k]
            j = mats[k + 1] if k + 1 < len(mats) else len(self.layers)
            between = list(range(i + 1, j))
            nxt = self.layers[j] if j < len(self.layers) else None
            if nxt is not None and nxt["precision"] == "xnor":
                stream = self.binary_segment(i, between, j, stream)
                k += 1
            elif nxt is not None and nxt["precision"] == "float" and self.layers[i]["precision"] == "xnor":
                end = mats[k + 2] if k + 2 < len(mats) else len(self.layers)
                if end != len(self.layers):
                    raise self.err(j, "a full-precision layer is supported only as the last layer")
                stream = self.scale_mac_segment(i, between, j, list(range(j + 1, end)), stream)
                k += 2
            else:
                raise self.err(i, "unsupported layer sequence: a full-precision layer must read "
                                  "pixels (first) or XNOR-CF outputs (last)")
        n_out = int(np.prod(self.shapes[-1]))
        meta = {"source": self.ckpt.path, "spec_name": self.spec["name"],
                "segments": self.segments, "cf_costs": self.costs,
                "relu_frac_bits": RELU_FRAC_BITS, "scale_bits": SCALE_BITS}
        return Graph(self.spec["name"], self.nodes, inp, self.logit_scale, n_out, meta)

    # --- a matrix layer's own parameters -------------------------------------
    def matrix(self, i: int, stream: Stream):
        """Weights in tap order (ky, kx, c), window geometry, y = scale*acc + bias and acc range."""
        layer = self.layers[i]
        w = self.param(i, "weight")
        if layer["type"] == "linear":
            h, wd, c = stream.h, stream.w, stream.c
            if h != wd:
                raise self.err(i, f"a fully connected layer over a {h}x{wd} map needs a square map")
            w = w.reshape(w.shape[0], c, h, wd)     # PyTorch flatten order (c, h, w)
            k, stride, pad, pad_value = h, 1, 0, 0
        else:
            k, stride, pad = layer["kernel"], layer["stride"], layer["padding"]
            pad_value = 0
            if layer["precision"] == "xnor" and pad:
                if layer["pad_value"] != -1:
                    raise self.err(i, "zero padding of binary activations cannot be held in one "
                                      "bit; train with pad_value -1 (the default for xnor layers)")
        taps = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(w.shape[0], -1)
        bias = self.param(i, "bias") if layer["bias"] else np.zeros(w.shape[0])
        K = taps.shape[1]
        if layer["precision"] == "xnor":
            n = layer["cf"]
            alpha = np.abs(taps).reshape(-1, n * K).mean(axis=1)
            if np.any(alpha <= 0):
                raise self.err(i, "a CF group has all-zero weights (alpha = 0)")
            bits = (taps >= 0).astype(np.uint8)
            scale = np.repeat(alpha, n)
            lo, hi = np.full(w.shape[0], -K), np.full(w.shape[0], K)
            return dict(matrix="xnor", weights=bits, k=k, stride=stride, pad=pad,
                        pad_value=pad_value, scale=scale, bias=bias, lo=lo, hi=hi, alpha=alpha)
        # Full-precision first layer: int8 weights with a per-channel scale on uint8 pixels.
        s = np.abs(taps).max(axis=1) / INT8_MAX
        s = np.where(s > 0, s, 1.0)
        wq = np.clip(np.round(taps / s[:, None]), -INT8_MAX, INT8_MAX).astype(np.int8)
        lo = 255 * np.minimum(wq, 0).astype(np.int64).sum(axis=1)
        hi = 255 * np.maximum(wq, 0).astype(np.int64).sum(axis=1)
        return dict(matrix="int8", weights=wq, k=k, stride=stride, pad=pad, pad_value=0,
                    scale=s / 255.0, bias=bias, lo=lo, hi=hi,
                    weight_error=taps / s[:, None] - wq)

    def conv_node(self, i: int, m: dict, stream: Stream, **act) -> ConvNode:
        c_out = m["weights"].shape[0]
        oh = (stream.h + 2 * m["pad"] - m["k"]) // m["stride"] + 1
        ow = (stream.w + 2 * m["pad"] - m["k"]) // m["stride"] + 1
        acc_bits = signed_bits(int(m["lo"].min()), int(m["hi"].max()))
        out = (Stream(oh, ow, c_out, "bit", 1) if act["act"] == "threshold"
               else Stream(oh, ow, c_out, "int", act.pop("out_bits")))
        return ConvNode(self.layers[i]["name"], stream, out, k=m["k"], stride=m["stride"],
                        pad=m["pad"], pad_value=m["pad_value"], matrix=m["matrix"],
                        weights=m["weights"], acc_bits=acc_bits,
                        weight_error=m.get("weight_error"), **act)

    def record_cost(self, i: int, m: dict, out: Stream, mults_per_group: int = 0) -> None:
        """Full-precision multiplies and stored scales this layer needs in hardware, for its
        CF n and for filter-wise scales (n = 1). Scales folded into thresholds cost none."""
        layer = self.layers[i]
        c_out = int(m["weights"].shape[0])
        n = layer["cf"] or 1
        groups = c_out // n if mults_per_group else 0
        self.costs.append({
            "layer": layer["name"], "precision": layer["precision"], "cf": layer["cf"],
            "out_channels": c_out,
            "binary_macs": int(m["weights"].size * out.h * out.w) if m["matrix"] == "xnor" else 0,
            "int8_macs": int(m["weights"].size * out.h * out.w) if m["matrix"] == "int8" else 0,
            "fp_multiplies": groups * mults_per_group,
            "fp_multiplies_filterwise": (c_out * mults_per_group) if mults_per_group else 0,
            "stored_scales": groups, "stored_scales_filterwise": c_out if mults_per_group else 0})

    # --- segment: matrix layer -> (pools, per-channel ops) -> next sign ---------
    def binary_segment(self, i: int, between: list[int], j: int, stream: Stream) -> Stream:
        m = self.matrix(i, stream)
        c_out = m["weights"].shape[0]
        kinds = [self.layers[b]["type"] for b in between]
        for b, kind in zip(between, kinds):
            if kind not in ELEMENTWISE + ("maxpool", "avgpool", "flatten"):
                raise self.err(b, f"{kind} between two matrix layers is not supported")
        pools = [b for b, kind in zip(between, kinds) if kind in ("maxpool", "avgpool")]
        if len(pools) > 1:
            raise self.err(pools[1], "only one pooling layer between two matrix layers")
        pool = pools[0] if pools else None
        start = len(self.nodes)
        y = lambda acc: m["scale"] * acc + m["bias"]
        if pool is None or self.layers[pool]["type"] == "maxpool":
            pre = self.chain([b for b in between if pool is None or b < pool], c_out)
            post = self.chain([b for b in between if pool is not None and b > pool], c_out)
            T = lambda acc: post(pre(y(acc))) >= 0
            tau, direction = fold_threshold(T, m["lo"], m["hi"])
            node = self.conv_node(i, m, stream, act="threshold", thresholds=tau,
                                  direction=direction,
                                  thr_bits=signed_bits(int(m["lo"].min()), int(m["hi"].max()) + 1))
            self.nodes.append(node)
            stream = node.out
            if pool is not None:
                stream = self.maxpool_node(pool, stream, post.direction())
        else:
            stream = self.avgpool_segment(i, m, between, pool, stream)
        self.record_cost(i, m, self.nodes[start].out)
        self.segments.append({"nodes": [n.name for n in self.nodes[start:]],
                              "matrix_layer": self.ref(i), "in_ref": self.ref(self.input_ref(i)),
                              "out_ref": self.ref(j - 1), "out": "bits"})
        for node in self.nodes[start:]:
            node.ref_layer = j - 1
        return stream

    def input_ref(self, i: int):
        """Spec index whose float output, binarized, is matrix layer i's input (None: pixels)."""
        return None if i == 0 else i - 1

    def maxpool_node(self, p: int, stream: Stream, post_dir: np.ndarray) -> Stream:
        layer = self.layers[p]
        oh = (stream.h + 2 * layer["padding"] - layer["kernel"]) // layer["stride"] + 1
        ow = (stream.w + 2 * layer["padding"] - layer["kernel"]) // layer["stride"] + 1
        node = MaxPoolNode(layer["name"], stream, Stream(oh, ow, stream.c, stream.kind, stream.bits),
                           k=layer["kernel"], stride=layer["stride"], pad=layer["padding"],
                           invert=(post_dir < 0).astype(np.uint8))
        self.nodes.append(node)
        return node.out

    def relu_offset(self, i: int, m: dict, pre_ops: list[int], c_out: int,
                    frac_bits: int = RELU_FRAC_BITS):
        """Write pre-ops(y(acc)) as a2 * relu(a1*acc + c1) + c2 and return the hardware form
        R = max(0, sign*acc*2^F + B) with a = a2*|a1| so that value ~= a * R / 2^F + c2."""
        kinds = [self.layers[b]["type"] for b in pre_ops if self.layers[b]["type"] != "dropout"]
        if kinds.count("relu") != 1:
            raise self.err(i, "an average pool or full-precision consumer needs exactly one ReLU "
                              "after the binary layer (x -> relu form)")
        r = pre_ops.index(next(b for b in pre_ops if self.layers[b]["type"] == "relu"))
        before = self.chain(pre_ops[:r], c_out)
        after = self.chain(pre_ops[r + 1:], c_out)
        # Both sides are affine: recover slope and intercept by evaluating at 0 and 1.
        a1 = before(m["scale"] * 1.0 + m["bias"]) - before(m["bias"])
        c1 = before(m["bias"] + 0.0)
        a2 = after(np.ones(c_out)) - after(np.zeros(c_out))
        c2 = after(np.zeros(c_out))
        if np.any(a1 == 0):
            raise self.err(i, "a channel's pre-ReLU slope is zero")
        F = frac_bits
        sign = np.where(a1 < 0, -1, 1).astype(np.int8)
        offset = np.round(c1 / np.abs(a1) * (1 << F)).astype(np.int64)
        r_max = int(np.max(m["hi"] * (1 << F) + offset))
        return dict(sign=sign, offset=offset, frac_bits=F, r_max=max(r_max, 1),
                    a=a2 * np.abs(a1), c2=c2)

    def avgpool_segment(self, i, m, between, pool, stream) -> Stream:
        c_out = m["weights"].shape[0]
        pre_ops = [b for b in between if b < pool]
        ro = self.relu_offset(i, m, pre_ops, c_out)
        player = self.layers[pool]
        k, pad = player["kernel"], player["padding"]
        if pad and np.any(np.abs(ro["c2"]) > 1e-12):
            raise self.err(pool, "average pool with padding after an affine offset is not "
                                 "position-independent; move the batch norm after the pool")
        out_bits = unsigned_bits(ro["r_max"]) + 1
        node = self.conv_node(i, m, stream, act="relu_offset", sign=ro["sign"],
                              offset=ro["offset"], frac_bits=ro["frac_bits"], out_bits=out_bits)
        self.nodes.append(node)
        post = self.chain([b for b in between if b > pool], c_out)
        s_max = k * k * ro["r_max"]
        F = ro["frac_bits"]
        T = lambda s: post(ro["a"] * s / (k * k * (1 << F)) + ro["c2"]) >= 0
        tau, direction = fold_threshold(T, np.zeros(c_out, np.int64), np.full(c_out, s_max))
        st = node.out
        oh, ow = out_dim(st.h, k, player["stride"], pad), out_dim(st.w, k, player["stride"], pad)
        pnode = AvgPoolNode(player["name"], st, Stream(oh, ow, c_out, "bit", 1), k=k,
                            stride=player["stride"], pad=pad, sum_bits=unsigned_bits(s_max) + 1,
                            thresholds=tau, direction=direction,
                            thr_bits=signed_bits(0, s_max + 1))
        self.nodes.append(pnode)
        return pnode.out

    # --- segment: XNOR-CF layer -> per-channel ops -> full-precision layer -> output ---
    def scale_mac_segment(self, i, between, j, tail, stream) -> Stream:
        m = self.matrix(i, stream)
        c_out = m["weights"].shape[0]
        pools = []
        for b in between:
            kind = self.layers[b]["type"]
            if kind == "maxpool":
                pools.append(b)
            elif kind not in ELEMENTWISE + ("flatten",):
                raise self.err(b, f"{kind} between an XNOR layer and the full-precision layer "
                                  f"is not supported (on the {stream.h}x{stream.w}x{stream.c} "
                                  f"map of layer {self.layers[i]['name']}); a max-pool is")
        if len(pools) > 1:
            raise self.err(pools[1], "only one max-pool between an XNOR layer and the "
                                     "full-precision layer")
        # Every op is per channel and monotone, so the max-pool may be moved to the R stream
        # wherever it sits in the chain (docs/ARITHMETIC.md, "max-pool of the R stream").
        ro = self.relu_offset(i, m, [b for b in between if b not in pools], c_out)
        node = self.conv_node(i, m, stream, act="relu_offset", sign=ro["sign"],
                              offset=ro["offset"], frac_bits=ro["frac_bits"],
                              out_bits=unsigned_bits(ro["r_max"]) + 1)
        self.nodes.append(node)
        st = node.out
        if pools:
            # value = a * R / 2^F + c2 falls with R where a < 0: those channels pool the minimum
            st = self.maxpool_node(pools[0], st, np.where(ro["a"] < 0, -1.0, 1.0))
        fl = self.layers[j]
        if fl["type"] == "conv":
            k, stride = fl["kernel"], fl["stride"]
            if fl["padding"]:
                raise self.err(j, f"the full-precision conv after XNOR-CF outputs must be "
                                  f"unpadded (an out-of-image value has no neutral R), got "
                                  f"k{k} s{stride} p{fl['padding']} on a {st.h}x{st.w}x{st.c} map")
            if k > min(st.h, st.w):
                raise self.err(j, f"kernel {k} larger than its {st.h}x{st.w}x{st.c} input map")
        elif (st.h, st.w) == (1, 1):
            k, stride = 1, 1
        elif st.h == st.w:
            k, stride = st.h, 1              # a linear layer on the flattened map: one window
        else:
            raise self.err(j, f"a fully connected full-precision layer on a flattened "
                              f"{st.h}x{st.w}x{st.c} map needs a square map")
        Wt = self.param(j, "weight")
        if Wt.ndim == 2:                     # linear: PyTorch flatten order (c, h, w)
            Wt = Wt.reshape(Wt.shape[0], st.c, k, k)
        # tap order (ky, kx, c), as the window generator emits them
        W = np.ascontiguousarray(Wt.transpose(0, 2, 3, 1)).reshape(Wt.shape[0], -1)  # [K, KK*C]
        kk = k * k
        b9 = self.param(j, "bias") if fl["bias"] else np.zeros(W.shape[0])
        n = self.layers[i]["cf"]
        alpha = m["alpha"]                                  # [C/n]
        per_filter_alpha = np.repeat(alpha, n)
        c_o = ro["a"] / per_filter_alpha                    # value_o = alpha_g * c_o * R_o / 2^F + c2_o
        c_o, c2 = np.tile(c_o, kk), np.tile(ro["c2"], kk)   # per window column (tap, o)
        Wp = W * c_o[None, :]
        sw = np.abs(Wp).max() / INT8_MAX
        sw = sw if sw > 0 else 1.0
        wq = np.clip(np.round(Wp / sw), -INT8_MAX, INT8_MAX).astype(np.int8)
        fa = SCALE_BITS - 1 - math.floor(math.log2(alpha.max()))
        A = np.round(alpha * 2.0 ** fa).astype(np.int64)
        A = np.clip(A, 1, (1 << SCALE_BITS) - 1)
        out_scale = sw * 2.0 ** -(ro["frac_bits"] + fa)
        const = b9 + W @ c2
        bias = np.round(const / out_scale).astype(np.int64)
        relu, rest = False, []
        for t in tail:
            kind = self.layers[t]["type"]
            if kind == "relu" and not relu and not rest:
                relu = True
            elif kind in ("avgpool", "flatten", "dropout"):
                rest.append(t)
            else:
                raise self.err(t, f"{kind} after the last full-precision layer is not supported")
        # Worst-case ranges from the actual weights and per-channel R bounds.
        r_max_o = np.tile(np.maximum(m["hi"] * (1 << ro["frac_bits"]) + ro["offset"], 0), kk)
        contrib = np.abs(wq.astype(np.int64)) * r_max_o[None, :]                 # [K, KK*C]
        gsum = contrib.reshape(W.shape[0], -1, n).sum(axis=2)                    # [K, KK*G]
        group_max = int(gsum.max())
        z_max = int((gsum @ np.tile(A, kk)).max() + np.abs(bias).max())
        oh, ow = out_dim(st.h, k, stride, 0), out_dim(st.w, k, stride, 0)
        mac = ScaleMacNode(fl["name"], st, Stream(oh, ow, W.shape[0], "int",
                                                  signed_bits(-z_max, z_max)),
                           k=k, stride=stride,
                           n=n, weights=wq, scales=A, scale_bits=SCALE_BITS, bias=bias, relu=relu,
                           group_bits=signed_bits(-group_max, group_max),
                           acc_bits=signed_bits(-z_max, z_max), out_scale=float(out_scale),
                           scale_frac_bits=fa, in_frac_bits=ro["frac_bits"])
        self.nodes.append(mac)
        self.logit_scale = float(out_scale)
        out = mac.out
        gpools = [t for t in rest if self.layers[t]["type"] == "avgpool"]
        if gpools:
            pl = self.layers[gpools[0]]
            if len(gpools) > 1 or pl["padding"] or pl["kernel"] != out.h or out.h != out.w:
                raise self.err(gpools[0], f"only a global average pool may follow the last "
                                          f"layer (one unpadded pool of kernel = the whole "
                                          f"square map); got k{pl['kernel']} p{pl['padding']} "
                                          f"on a {out.h}x{out.w}x{out.c} map"
                                          + (f" ({len(gpools)} pools)" if len(gpools) > 1 else ""))
            count = out.h * out.w
            s_max = count * (1 << (out.bits - 1))
            g = GlobalSumNode(pl["name"], out, Stream(1, 1, out.c, "int",
                                                      signed_bits(-s_max, s_max)),
                              out_scale=float(out_scale / count))
            self.nodes.append(g)
            self.logit_scale = float(out_scale / count)
            out = g.out
        self.record_cost(i, m, node.out, mults_per_group=W.shape[0] * kk * oh * ow)
        start = self.nodes.index(node)
        self.segments.append({"nodes": [x.name for x in self.nodes[start:]], "matrix_layer": i,
                              "in_ref": self.input_ref(i), "out_ref": len(self.layers) - 1,
                              "float_layer": j, "out": "logits"})
        for x in self.nodes[start:]:
            x.ref_layer = len(self.layers) - 1
        return out


def lower(ckpt: Checkpoint) -> Graph:
    """Checkpoint -> streamlined hardware graph (raises LoweringError with a clear message)."""
    if specmod.has_residual(ckpt.spec) is not None:
        from .lower_residual import ResidualLowerer     # it builds on this module
        return ResidualLowerer(ckpt).lower()
    return Lowerer(ckpt).lower()
