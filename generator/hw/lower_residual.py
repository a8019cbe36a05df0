"""Lower a residual network (spec layers of type `residual`) to a hardware DAG.

The layout it takes, the paper's ResNets and the zoo's digits_res / resnet20_bin:

    float conv -> per-channel ops (one ReLU) [-> max-pool] -> residual blocks -> [dropout]
      -> global average pool -> flatten -> float linear

The residual stream between blocks is an integer stream with a per-channel affine format
(real = scale_c * X_c + shift_c, `Fmt`): the first conv's R stream (scale a_c / 2^F, shift
c2_c), then after every block the add's output with one scale s for all channels, chosen
so the block's worst-case range fills RES_BITS bits (no overflow is possible, so there is
no saturation). Per block (docs/ARITHMETIC.md, section 9):

- the body's first sign is a threshold of X (an average pool of k = 1, exact);
- the body's binary convs are the usual binary segments (lower.Lowerer.binary_segment);
- its last conv emits R (its ReLU form) or, without a ReLU, R = acc + K (exact);
- a float shortcut conv (and its BN) is a scale MAC with one group on X;
- the add requantizes both branches to the output format: z = ma*a + mb*b + bias, >> shift.

The tail is a global sum of X and the classifier as a one-group scale MAC on the 1x1 map.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

from ..core.errors import LoweringError
from .ir import (AvgPoolNode, GlobalSumNode, ResAddNode, ScaleMacNode, Stream, out_dim,
                 signed_bits, unsigned_bits)
from .lower import ELEMENTWISE, INT8_MAX, RELU_FRAC_BITS, SCALE_BITS, Lowerer, fold_threshold

RES_BITS = 16          # magnitude bits of the residual stream after an add
ADD_GUARD_BITS = 1     # the add's multipliers round to 1/4 LSB of the output at most
STEM_FRAC_BITS = 0     # fractional bits of the first conv's R stream (its ReLU offset)


@dataclass
class Fmt:
    """An integer stream and what it means: real_c = scale[c] * X_c + shift[c], X_c in
    [lo[c], hi[c]]; `node` produces it, `ref` names the float layer holding its value."""
    stream: Stream
    node: str
    ref: str
    scale: np.ndarray
    shift: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    def real_range(self) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.scale * self.lo + self.shift, self.scale * self.hi + self.shift
        return np.minimum(a, b), np.maximum(a, b)

    def to_meta(self) -> dict:
        return {"scale": self.scale.tolist(), "shift": self.shift.tolist(),
                "lo": self.lo.tolist(), "hi": self.hi.tolist()}


def _affine(chain, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Slope and intercept of an affine per-channel chain."""
    f0 = chain(np.zeros(c))
    return chain(np.ones(c)) - f0, f0


class ResidualLowerer(Lowerer):
    """Lowerer over nested scopes: `scope` swaps the layer list and state keys so the
    chain helpers (matrix, chain, binary_segment, relu_offset) work inside a block."""

    def __init__(self, ckpt):
        super().__init__(ckpt)
        self.scope_in = None            # ref of the value binarized by a body's first conv
        self.formats: dict = {}

    def ref(self, i):
        if i is None:
            return None
        if i < 0:
            return self.scope_in
        return self.layers[i]["name"]

    @contextlib.contextmanager
    def scope(self, layers: list, keys: list, scope_in: str):
        saved = self.layers, self.keys, self.scope_in
        self.layers, self.keys, self.scope_in = layers, keys, scope_in
        try:
            yield
        finally:
            self.layers, self.keys, self.scope_in = saved

    def add(self, node):
        self.nodes.append(node)
        return node

    def unique(self, name: str) -> str:
        taken = {n.name for n in self.nodes} | {l["name"] for l in self.all_layers}
        if name in taken:
            raise LoweringError(f"node name {name} (made for a residual block) is taken by a "
                                f"layer; rename that layer")
        return name

    # --- the walk ----------------------------------------------------------------
    def lower(self):
        from ..model import spec as specmod
        L = self.layers
        self.all_layers = list(specmod.walk(self.spec))
        if L[0]["type"] != "conv" or L[0]["precision"] != "float":
            raise LoweringError("the first layer must be a full-precision conv (it reads uint8 "
                                "pixels)")
        blocks = [i for i, l in enumerate(L) if l["type"] == "residual"]
        first, last = blocks[0], blocks[-1]
        for i in range(first, last + 1):
            if L[i]["type"] not in ("residual", "dropout"):
                raise self.err(i, f"{L[i]['type']} between residual blocks is not supported "
                                  f"(only more blocks or dropout)")
        c, h, w = self.shapes[0]
        inp = Stream(h, w, c, "uint", 8)
        x = self.stem(inp, list(range(1, first)))
        for b in blocks:
            x = self.block(b, x)
        self.tail(x, list(range(last + 1, len(L))))
        for n in self.nodes:            # spec indices do not name nested layers
            n.ref_layer = -1
        n_out = int(np.prod(self.shapes[-1]))
        meta = {"source": self.ckpt.path, "spec_name": self.spec["name"], "refs": "names",
                "segments": self.segments, "cf_costs": self.costs, "formats": self.formats,
                "relu_frac_bits": RELU_FRAC_BITS, "scale_bits": SCALE_BITS,
                "res_bits": RES_BITS}
        from .ir import Graph
        return Graph(self.spec["name"], self.nodes, inp, self.logit_scale, n_out, meta)

    def fmt(self, f: Fmt) -> Fmt:
        self.formats[f.node] = f.to_meta()
        return f

    # --- the first conv: R stream ---------------------------------------------------
    def stem(self, inp: Stream, between: list[int]) -> Fmt:
        m = self.matrix(0, inp)
        c_out = m["weights"].shape[0]
        pools = [b for b in between if self.layers[b]["type"] == "maxpool"]
        for b in between:
            if self.layers[b]["type"] not in ELEMENTWISE + ("maxpool",):
                raise self.err(b, f"{self.layers[b]['type']} between the first conv and the "
                                  f"first residual block is not supported")
        if len(pools) > 1:
            raise self.err(pools[1], "only one max-pool before the first residual block")
        ops = [b for b in between if b not in pools]
        if any(self.layers[b]["type"] == "relu" for b in ops):
            # F = 0: the int8 weights already round the accumulator by far more than 1/2
            ro = self.relu_offset(0, m, ops, c_out, frac_bits=STEM_FRAC_BITS)
            s64 = ro["sign"].astype(np.int64)
            r_hi = np.maximum(np.maximum(s64 * m["lo"], s64 * m["hi"]) * (1 << ro["frac_bits"])
                              + ro["offset"], 0)
            # the matrix unit sizes its output from the accumulator range over all channels
            top = np.maximum(s64 * int(m["lo"].min()), s64 * int(m["hi"].max())) \
                * (1 << ro["frac_bits"]) + ro["offset"]
            scale, shift, frac = ro["a"] / (1 << ro["frac_bits"]), ro["c2"], ro["frac_bits"]
            sign, offset = ro["sign"], ro["offset"]
            pool_dir = np.where(ro["a"] < 0, -1.0, 1.0)
        else:
            # no ReLU: the affine value of R = acc - min(acc) (exact, never clipped)
            lo = int(m["lo"].min())
            slope, icpt = _affine(lambda acc: self.chain(ops, c_out)(m["scale"] * acc + m["bias"]),
                                  c_out)
            sign, offset, frac = np.ones(c_out, np.int8), np.full(c_out, -lo, np.int64), 0
            scale, shift = slope, icpt + slope * lo
            r_hi = m["hi"].astype(np.int64) - lo
            top = np.array([int(m["hi"].max()) - lo])
            pool_dir = np.where(slope < 0, -1.0, 1.0)
        node = self.conv_node(0, m, inp, act="relu_offset", sign=sign, offset=offset,
                              frac_bits=frac, out_bits=unsigned_bits(int(max(top.max(), 1))) + 1)
        self.add(node)
        names = [node.name]
        st = node.out
        if pools:
            self.maxpool_node(pools[0], st, pool_dir)
            st = self.nodes[-1].out
            names.append(self.nodes[-1].name)
        self.record_cost(0, m, node.out)
        ref = self.layers[between[-1]]["name"] if between else self.layers[0]["name"]
        f = self.fmt(Fmt(st, names[-1], ref, scale, shift, np.zeros(c_out, np.int64),
                         r_hi.astype(np.int64)))
        self.segments.append({"nodes": names, "in_ref": None, "out_ref": ref, "out": "int",
                              "frac_bits": frac})
        return f

    # --- one block -------------------------------------------------------------------
    def block(self, bi: int, x: Fmt) -> Fmt:
        layer = self.layers[bi]
        key = self.keys[bi]
        body, short = layer["body"], layer["shortcut"] or []
        with self.scope(body, [f"{key}.body.{j}" for j in range(len(body))], x.ref):
            a, body_last, body_in = self.body(layer, x)
        if short:
            with self.scope(short, [f"{key}.shortcut.{j}" for j in range(len(short))], x.ref):
                b = self.shortcut(layer, x)
        else:
            b = x
        if (a.stream.h, a.stream.w, a.stream.c) != (b.stream.h, b.stream.w, b.stream.c):
            raise self.err(bi, f"the body gives {a.stream.h}x{a.stream.w}x{a.stream.c}, the "
                               f"shortcut {b.stream.h}x{b.stream.w}x{b.stream.c}")
        return self.join(layer, a, b, body_last, body_in, x, identity=not short)

    def body(self, layer: dict, x: Fmt):
        body = self.layers
        mats = [j for j, l in enumerate(body) if l["type"] in ("conv", "linear")]
        if not mats:
            raise LoweringError(f"layer {layer['name']}: a residual body needs a binary conv")
        for j in mats:
            if body[j]["precision"] != "xnor":
                raise self.err(j, "residual bodies are XNOR-CF convs in hardware (the paper "
                                  "keeps only the first conv, shortcuts and the classifier "
                                  "full precision)")
            if body[j]["type"] == "linear":
                raise self.err(j, "a linear layer inside a residual body is not supported")
        for j, l in enumerate(body):
            if l["type"] not in ELEMENTWISE + ("conv", "maxpool", "avgpool"):
                raise self.err(j, f"{l['type']} in a residual body is not supported")
        first = mats[0]
        for j in range(first):
            if body[j]["type"] not in ELEMENTWISE:
                raise self.err(j, f"{body[j]['type']} before a body's first conv is not "
                                  f"supported (only batch norm, ReLU, dropout)")
        # the first sign: a threshold of the residual stream X
        pre = self.chain(list(range(first)), x.stream.c)
        T = lambda v: pre(x.scale * v + x.shift) >= 0
        tau, direction = fold_threshold(T, x.lo, x.hi)
        s = x.stream
        sign = self.add(AvgPoolNode(self.unique(f"{layer['name']}_sign"), s,
                                    Stream(s.h, s.w, s.c, "bit", 1), k=1, stride=1, pad=0,
                                    sum_bits=s.bits, thresholds=tau, direction=direction,
                                    thr_bits=signed_bits(int(x.lo.min()), int(x.hi.max()) + 1),
                                    inputs=[x.node]))
        out_ref = self.ref(first - 1)
        self.segments.append({"nodes": [sign.name], "in_int": x.node, "in_ref": x.ref,
                              "out_ref": out_ref, "out": "bits"})
        stream = sign.out
        for k in range(len(mats) - 1):
            i, j = mats[k], mats[k + 1]
            stream = self.binary_segment(i, list(range(i + 1, j)), j, stream)
        # the last conv: R (its ReLU form) or the raw accumulator R = acc + K
        i = mats[-1]
        post = list(range(i + 1, len(body)))
        for j in post:
            if body[j]["type"] not in ELEMENTWISE:
                raise self.err(j, f"{body[j]['type']} after a body's last conv is not "
                                  f"supported (only batch norm, ReLU, dropout before the add)")
        m = self.matrix(i, stream)
        c_out = m["weights"].shape[0]
        relus = [j for j in post if body[j]["type"] == "relu"]
        if relus:
            ro = self.relu_offset(i, m, post, c_out)
            node = self.conv_node(i, m, stream, act="relu_offset", sign=ro["sign"],
                                  offset=ro["offset"], frac_bits=ro["frac_bits"],
                                  out_bits=unsigned_bits(ro["r_max"]) + 1)
            scale, shift = ro["a"] / (1 << ro["frac_bits"]), ro["c2"]
            hi = np.maximum(m["hi"] * (1 << ro["frac_bits"]) + ro["offset"], 0)
        else:
            K = int(m["hi"].max())
            slope, icpt = _affine(lambda acc: self.chain(post, c_out)(m["scale"] * acc + m["bias"]),
                                  c_out)
            node = self.conv_node(i, m, stream, act="relu_offset",
                                  sign=np.ones(c_out, np.int8), offset=np.full(c_out, K, np.int64),
                                  frac_bits=0, out_bits=unsigned_bits(2 * K) + 1)
            scale, shift = slope, icpt - slope * K
            hi = np.full(c_out, 2 * K, np.int64)
        self.add(node)
        self.record_cost(i, m, node.out)
        body_in = self.ref(self.input_ref(i))
        a = Fmt(node.out, node.name, self.ref(len(body) - 1), scale, shift,
                np.zeros(c_out, np.int64), hi.astype(np.int64))
        return a, node, body_in

    def shortcut(self, layer: dict, x: Fmt) -> Fmt:
        short = self.layers
        if short[0]["type"] != "conv" or short[0]["precision"] != "float":
            raise self.err(0, "a residual shortcut is a full-precision conv (and batch norm)")
        for j in range(1, len(short)):
            if short[j]["type"] not in ("batchnorm", "dropout"):
                raise self.err(j, f"{short[j]['type']} in a shortcut is not supported (a conv "
                                  f"and batch norm)")
        sl = short[0]
        k, stride = sl["kernel"], sl["stride"]
        s = x.stream
        if sl["padding"]:
            raise self.err(0, f"a shortcut conv must be unpadded (k{k} s{stride} "
                              f"p{sl['padding']} on a {s.h}x{s.w}x{s.c} map)")
        Wt = self.param(0, "weight")                               # [K, C, k, k]
        c_out = Wt.shape[0]
        g, beta = _affine(self.chain(list(range(1, len(short))), c_out), c_out)
        bias = self.param(0, "bias") if sl["bias"] else np.zeros(c_out)
        W = np.ascontiguousarray(Wt.transpose(0, 2, 3, 1)).reshape(c_out, -1)   # taps (ky,kx,c)
        kk = k * k
        sc, sh = np.tile(x.scale, kk), np.tile(x.shift, kk)
        Wp = g[:, None] * W * sc[None, :]
        const = g * (bias + W @ sh) + beta
        node, zlo, zhi = self.onegroup_mac(sl["name"], s, Wp, const, np.tile(x.lo, kk),
                                           np.tile(x.hi, kk), k, stride, [x.node])
        sw = node.out_scale
        return Fmt(node.out, node.name, self.ref(len(short) - 1), np.full(c_out, sw),
                   np.zeros(c_out), zlo, zhi)

    def onegroup_mac(self, name: str, s: Stream, Wp: np.ndarray, const: np.ndarray,
                     lo: np.ndarray, hi: np.ndarray, k: int, stride: int, inputs: list):
        """A float layer on an integer stream as a one-group scale MAC (one scale A = 1):
        real weights per input LSB Wp [K, k*k*C] to int8 with one per-tensor step s_w,
        `const` to the bias; the output's exact range from the inputs' [lo, hi] per window
        column. Returns (node, zlo, zhi); real value = s_w * z."""
        sw = float(np.abs(Wp).max() / INT8_MAX) or 1.0
        wq = np.clip(np.round(Wp / sw), -INT8_MAX, INT8_MAX).astype(np.int8)
        bq = np.round(const / sw).astype(np.int64)
        w64 = wq.astype(np.int64)
        zlo = np.minimum(w64 * lo, w64 * hi).sum(axis=1) + bq
        zhi = np.maximum(w64 * lo, w64 * hi).sum(axis=1) + bq
        gmax = int(np.maximum(np.abs(zlo - bq), np.abs(zhi - bq)).max())
        zb = signed_bits(int(zlo.min()), int(zhi.max()))
        oh, ow = out_dim(s.h, k, stride, 0), out_dim(s.w, k, stride, 0)
        node = self.add(ScaleMacNode(name, s, Stream(oh, ow, Wp.shape[0], "int", zb), k=k,
                                     stride=stride, n=s.c, weights=wq,
                                     scales=np.ones(1, np.int64), scale_bits=1, bias=bq,
                                     relu=False, group_bits=signed_bits(-gmax, gmax),
                                     acc_bits=zb, out_scale=sw, scale_frac_bits=0,
                                     in_frac_bits=0, inputs=inputs))
        return node, zlo.astype(np.int64), zhi.astype(np.int64)

    def join(self, layer: dict, a: Fmt, b: Fmt, body_last, body_in, x_in: Fmt,
             identity: bool) -> Fmt:
        alo, ahi = a.real_range()
        blo, bhi = b.real_range()
        vlo, vhi = alo + blo, ahi + bhi
        relu = bool(layer["relu"])
        if relu:
            vlo, vhi = np.maximum(vlo, 0), np.maximum(vhi, 0)
        vmax = float(max(np.abs(vlo).max(), np.abs(vhi).max()))
        if not vmax > 0:
            raise LoweringError(f"layer {layer['name']}: the residual add is constant 0")
        s = vmax / ((1 << RES_BITS) - 1)
        amax = int(np.maximum(np.abs(a.lo), np.abs(a.hi)).max())
        bmax = int(np.maximum(np.abs(b.lo), np.abs(b.hi)).max())
        sh = math.ceil(math.log2(amax + bmax + 1)) + ADD_GUARD_BITS
        ma = np.round(a.scale / s * 2.0 ** sh).astype(np.int64)
        mb = np.round(b.scale / s * 2.0 ** sh).astype(np.int64)
        bias = np.round((a.shift + b.shift) / s * 2.0 ** sh).astype(np.int64) + (1 << (sh - 1))
        zlo = np.minimum(ma * a.lo, ma * a.hi) + np.minimum(mb * b.lo, mb * b.hi) + bias
        zhi = np.maximum(ma * a.lo, ma * a.hi) + np.maximum(mb * b.lo, mb * b.hi) + bias
        ylo, yhi = zlo >> sh, zhi >> sh
        if relu:
            ylo, yhi = np.maximum(ylo, 0), np.maximum(yhi, 0)
        st = a.stream
        out = Stream(st.h, st.w, st.c, "int", signed_bits(int(ylo.min()), max(int(yhi.max()), 1)))
        mm = np.concatenate([ma, mb])
        node = self.add(ResAddNode(layer["name"], st, out, inputs=[a.node, b.node],
                                   inp_b=b.stream, ma=ma, mb=mb, bias=bias,
                                   m_bits=signed_bits(int(mm.min()), int(mm.max())),
                                   bias_bits=signed_bits(int(bias.min()), int(bias.max())),
                                   acc_bits=signed_bits(int(zlo.min()), int(zhi.max())),
                                   shift=sh, relu=relu, out_scale=s))
        nodes = [body_last.name] + ([] if identity else [b.node]) + [node.name]
        self.segments.append({"nodes": nodes, "out": "residual", "body_in_ref": body_in,
                              "in_int": x_in.node, "in_ref": x_in.ref,
                              "short_node": None if identity else b.node,
                              "out_ref": layer["name"]})
        return self.fmt(Fmt(out, node.name, layer["name"], np.full(st.c, s), np.zeros(st.c),
                            ylo.astype(np.int64), yhi.astype(np.int64)))

    # --- the tail: global average pool and the classifier ----------------------------
    def tail(self, x: Fmt, idx: list[int]):
        L = self.layers
        kinds = [L[i]["type"] for i in idx if L[i]["type"] != "dropout"]
        if kinds != ["avgpool", "flatten", "linear"] or L[idx[-1]]["type"] != "linear":
            raise LoweringError(f"after the last residual block cfgen expects a global "
                                f"average pool, flatten and a full-precision linear layer; "
                                f"got {', '.join(kinds) or 'nothing'}")
        pi = next(i for i in idx if L[i]["type"] == "avgpool")
        fi = idx[-1]
        s = x.stream
        pl = L[pi]
        if pl["padding"] or pl["kernel"] != s.h or s.h != s.w:
            raise self.err(pi, f"only a global average pool may follow the last block (one "
                               f"unpadded pool of kernel = the whole square map); got "
                               f"k{pl['kernel']} p{pl['padding']} on a {s.h}x{s.w}x{s.c} map")
        if L[fi]["precision"] != "float":
            raise self.err(fi, "the classifier after a residual network is full precision")
        count = s.h * s.w
        glo, ghi = x.lo * count, x.hi * count
        gb = signed_bits(int(min(glo.min(), 0)), int(ghi.max()))
        gap = self.add(GlobalSumNode(pl["name"], s, Stream(1, 1, s.c, "int", gb)))
        W = self.param(fi, "weight")                                # [classes, C]
        bias = self.param(fi, "bias") if L[fi]["bias"] else np.zeros(W.shape[0])
        Wp = W * (x.scale / count)[None, :]
        fc, _, _ = self.onegroup_mac(L[fi]["name"], gap.out, Wp, bias + W @ x.shift, glo, ghi,
                                     1, 1, [])
        sw = fc.out_scale
        gap.out_scale = float(x.scale.mean())
        self.logit_scale = sw
        self.segments.append({"nodes": [gap.name, fc.name], "in_int": x.node, "in_ref": x.ref,
                              "out_ref": L[fi]["name"], "out": "logits_dag"})
