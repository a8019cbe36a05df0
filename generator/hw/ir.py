"""The hardware graph: a DAG of streaming integer units in topological order, the single
source of truth for shapes, folding and number formats that the golden model and both
backends read. A node reads the previous node's output unless `inputs` names its sources;
a stream read by two nodes is forked in hardware (residual blocks), and the two streams a
residual add joins are balanced by the FIFO the add records (`ResAddNode.skip_depth`).

Streams carry one pixel per beat in raster order (row, column), all channels of that
pixel packed: a 'bit' stream holds channel c at bit c (1 = +1, 0 = -1); 'uint'/'int'
streams hold `bits`-wide values, channel c at bits [c*bits, (c+1)*bits).
The exact arithmetic of every node is defined in docs/ARITHMETIC.md and executed by
generator/hw/golden.py.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from ..core.errors import BuildError, GraphError
from ..core.names import check_name
from ..model.spec import out_dim  # noqa: F401  (the layer geometry; hw users import it from here)


@dataclass
class Stream:
    h: int
    w: int
    c: int
    kind: str   # 'bit' | 'uint' | 'int' (two's complement)
    bits: int   # per channel value; 1 for 'bit'

    @property
    def beat_bits(self) -> int:
        return self.c * self.bits


@dataclass
class Node:
    name: str
    inp: Stream
    out: Stream
    # PE: output channels computed in parallel; SIMD: input channels consumed in parallel.
    pe: int = 1
    simd: int = 1
    # Where the float model holds the same value (spec layer index; see lower.py).
    ref_layer: int = -1
    # Names of the nodes whose outputs this node reads ("" is the graph input); empty: the
    # previous node's output (the graph input for the first node).
    inputs: list = field(default_factory=list)
    # least width of the fields of the parameter words the unit stores (thresholds, offsets,
    # biases), which it otherwise derives from their values; 0: from the values. Set by a
    # run-time weights build to leave room for a retrained model (weights.add_headroom).
    param_bits: int = 0
    ARRAYS = ()  # names of numpy-array fields

    @property
    def kind(self) -> str:
        return type(self).KIND


@dataclass
class ConvNode(Node):
    """Sliding window + matrix-vector unit + activation, one conv (or linear) layer.

    Window taps are ordered (ky, kx, c): column j = (ky*k + kx)*C_in + c of `weights`.
    Out-of-image taps take `pad_value` (a raw stream value: 0 for uint pixels, bit 0 = -1).
    matrix 'int8':  acc = sum_j weights[o, j] * x_j           (x uint pixels)
    matrix 'xnor':  acc = 2 * popcount(xnor(x, w_o)) - K      (K = k*k*C_in)
    act 'threshold':   out bit = acc >= thresholds[o] if direction[o] > 0 else acc <= thresholds[o]
    act 'relu_offset': out = max(0, sign[o] * acc * 2**frac_bits + offset[o])   (int)
    """
    KIND = "conv"
    k: int = 1
    stride: int = 1
    pad: int = 0
    pad_value: int = 0
    matrix: str = "xnor"            # 'xnor' | 'int8'
    # int8 only: multiplier implementation chosen by the folding (generator/hw/fold.py):
    # 'dsp' one product per DSP48, 'dsp2' two per DSP48 (docs/RTL.md), 'lut' LUT multipliers
    mult: str = "dsp"
    # register stages of the matrix unit's dot product (cf_mvu PIPE 0..2), chosen by the
    # folding from the target clock (generator/hw/pipeline.py); 0 for an unfolded graph
    pipe: int = 0
    # int8 dsp2 only: products summed per DSP48 chain before the lane adder trees (cf_mvu
    # DG 2..4), chosen by the folding from the target clock (generator/hw/pipeline.py)
    dsp_group: int = 4
    # where the weight memory lives, chosen by the folding (generator/hw/fold.py,
    # perf.WEIGHT_MEMS): 'auto' as the synthesis tool maps the ROM (block RAM, LUTs),
    # 'uram' UltraRAM, written at start-up through a run-time weight port (not built yet)
    weight_mem: str = "auto"
    # 'dram' (binary fully-connected layers only, generator/hw/dram.py): the weights stay in
    # DRAM and are streamed once per batch of `batch` frames (rtl/dram/; no backend renders
    # it yet); batch is 1 for every other weight memory
    batch: int = 1
    weights: np.ndarray = None      # xnor: uint8 0/1 [C_out, K]; int8: int8 [C_out, K]
    acc_bits: int = 0               # signed width that holds every reachable acc
    act: str = "threshold"          # 'threshold' | 'relu_offset'
    thresholds: np.ndarray = None   # int64 [C_out]
    direction: np.ndarray = None    # int8 [C_out], +1 or -1
    thr_bits: int = 0               # signed width of thresholds
    frac_bits: int = 0              # relu_offset: fractional bits of the offset
    sign: np.ndarray = None         # int8 [C_out], +1 or -1
    offset: np.ndarray = None       # int64 [C_out]
    # int8 only, not used by hardware: float weight / scale - int8 weight (LSBs), the one
    # inexact step of the first layer, kept to bound its effect (generator/hw/compare.py).
    weight_error: np.ndarray = None
    ARRAYS = ("weights", "thresholds", "direction", "sign", "offset", "weight_error")

    @property
    def K(self) -> int:
        return self.k * self.k * self.inp.c


@dataclass
class MaxPoolNode(Node):
    """Max-pool per channel over the window, min-pool where invert[c] = 1; out-of-image
    taps are ignored. On bit streams max is OR and min is AND (invert: a non-increasing
    threshold downstream); on int/uint streams the values compare as integers (invert: a
    non-increasing function of the value downstream, e.g. a negative scale)."""
    KIND = "maxpool"
    k: int = 2
    stride: int = 2
    pad: int = 0
    invert: np.ndarray = None       # uint8 [C]
    ARRAYS = ("invert",)


@dataclass
class AvgPoolNode(Node):
    """Average-pool sum of int values (out-of-image taps add 0), then a threshold:
    out bit = S >= thresholds[c] if direction[c] > 0 else S <= thresholds[c]."""
    KIND = "avgpool"
    k: int = 2
    stride: int = 2
    pad: int = 0
    sum_bits: int = 0
    thresholds: np.ndarray = None   # int64 [C]
    direction: np.ndarray = None    # int8 [C]
    thr_bits: int = 0
    ARRAYS = ("thresholds", "direction")


@dataclass
class ScaleMacNode(Node):
    """Per-group scale MAC (the fixed-point conv or fully connected layer after XNOR-CF
    outputs) over an unpadded k x k window (k = 1: per pixel; k = H = W: a linear layer on
    the flattened map), taps ordered (ky, kx, c) as ConvNode's, j = (ky*k + kx)*C_in + c:
    P[k, t, g] = sum_{c in group g} weights[k, t*C_in + c] * x_{t, c}   (group = c // n)
    z_k        = sum_t sum_g scales[g] * P[k, t, g] + bias[k];  out = max(0, z_k) if relu
    Real value: z_k * out_scale. C/n scales; C/n fixed-point multiplies per output and tap."""
    KIND = "scalemac"
    k: int = 1
    stride: int = 1
    pad: int = 0                    # always 0: an out-of-image R has no neutral value
    n: int = 1
    weights: np.ndarray = None      # int8 [C_out, k*k*C_in]
    scales: np.ndarray = None       # int64 [C_in / n], unsigned, `scale_bits` wide
    scale_bits: int = 16
    bias: np.ndarray = None         # int64 [C_out]
    relu: bool = True
    # register stage after the weight/scale/bias reads (cf_scalemac PIPE 0/1), chosen by the
    # folding from the target clock (generator/hw/pipeline.py)
    pipe: int = 0
    # where the weight memory lives, chosen by the folding (as ConvNode.weight_mem)
    weight_mem: str = "auto"
    group_bits: int = 0             # signed width of P
    acc_bits: int = 0               # signed width of z
    out_scale: float = 1.0
    # Not used by hardware: fractional bits of scales (Fa) and of the input values (F), so
    # out_scale = s_w * 2**-(F + Fa); compare.py derives its rounding bound from them.
    scale_frac_bits: int = 0
    in_frac_bits: int = 0
    ARRAYS = ("weights", "scales", "bias")


@dataclass
class GlobalSumNode(Node):
    """Global average pool as a sum over all H*W positions per channel (divisor folded
    into out_scale)."""
    KIND = "globalsum"
    out_scale: float = 1.0


@dataclass
class ResAddNode(Node):
    """Residual add: joins the body stream `inp` (a) and the shortcut stream `inp_b` (b)
    per channel into the fixed-point residual stream, requantizing both:
        z_c = ma[c] * a_c + mb[c] * b_c + bias[c];   y_c = z_c >> shift (floor);
        out_c = max(0, y_c) if relu else y_c
    Real value: out * out_scale. inputs = [body node, shortcut node]. The shortcut stream
    passes a FIFO of skip_depth pixels (sized by the folding from the latency model) so
    the fork that feeds both branches never waits for the add."""
    KIND = "resadd"
    inp_b: Stream = None
    ma: np.ndarray = None           # int64 [C], signed, m_bits wide
    mb: np.ndarray = None           # int64 [C]
    bias: np.ndarray = None         # int64 [C], bias_bits wide (rounding 2^(shift-1) included)
    m_bits: int = 0
    bias_bits: int = 0
    acc_bits: int = 0               # signed width of z
    shift: int = 0
    relu: bool = True
    skip_depth: int = 0             # pixels buffered on the shortcut input
    out_scale: float = 1.0
    ARRAYS = ("ma", "mb", "bias")


NODE_TYPES = {cls.KIND: cls for cls in (ConvNode, MaxPoolNode, AvgPoolNode, ScaleMacNode,
                                        GlobalSumNode, ResAddNode)}
STREAM_FIELDS = ("inp", "out", "inp_b")


@dataclass
class Graph:
    name: str
    nodes: list
    input: Stream
    logit_scale: float              # real logits = output ints * logit_scale
    num_classes: int
    meta: dict = field(default_factory=dict)  # source checkpoint, cf, per-layer CF costs, ...
    # every weight / threshold memory is a RAM written through the weight port after
    # start-up (docs/WEIGHTS.md) instead of a ROM with contents in the bitstream
    runtime_weights: bool = False

    @property
    def output(self) -> Stream:
        return self.nodes[-1].out

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def sources(self, i: int) -> list[str]:
        """Names of the nodes node i reads, in port order ("" is the graph input)."""
        n = self.nodes[i]
        if n.inputs:
            return list(n.inputs)
        return [self.nodes[i - 1].name if i else ""]

    def stream(self, name: str) -> Stream:
        return self.input if name == "" else self.node(name).out

    def consumers(self) -> dict:
        """{source name ("" = graph input): [(consumer index, port), ...]} in node order."""
        out: dict = {"": []}
        for n in self.nodes:
            out[n.name] = []
        for i in range(len(self.nodes)):
            for port, src in enumerate(self.sources(i)):
                out.setdefault(src, []).append((i, port))
        return out

    @property
    def is_chain(self) -> bool:
        return not any(n.inputs for n in self.nodes)

    def validate(self) -> "Graph":
        """Check the graph once (after lowering or folding, before any backend): every stream
        well formed, nodes in topological order, every input stream its source's output,
        every stream read once (or twice: a fork) and the last node's output the graph's,
        every output size what its window gives. One-line BuildError naming the node."""
        if not self.nodes:
            raise BuildError(f"graph {self.name}: no nodes")
        check_stream(self.input, "graph input")
        seen = {"": self.input}
        for i, n in enumerate(self.nodes):
            if not isinstance(n.inputs, (list, tuple)) or not all(isinstance(x, str) for x in n.inputs):
                raise BuildError(f"node {n.name}: inputs must be a list of node names")
            ports = [("inp", n.inp)] + ([("inp_b", n.inp_b)] if n.kind == "resadd" else [])
            srcs = self.sources(i)
            if len(srcs) != len(ports):
                raise BuildError(f"node {n.name}: a {n.kind} reads {len(ports)} stream(s), "
                                 f"inputs name {len(srcs)}")
            for (port, s), src in zip(ports, srcs):
                if src not in seen:
                    raise BuildError(f"node {n.name}: input {src!r:.40} is not an earlier node")
                check_stream(s, f"node {n.name} {port}")
                if asdict(s) != asdict(seen[src]):
                    raise BuildError(f"node {n.name}: {port} stream {_desc(s)} does not match "
                                     f"the stream {_desc(seen[src])} of "
                                     f"{repr(src) if src else 'the graph input'}")
            if n.name in seen:
                raise BuildError(f"graph {self.name}: two nodes named {n.name!r:.40}")
            check_stream(n.out, f"node {n.name} output")
            check_node(n)
            seen[n.name] = n.out
        for src, readers in self.consumers().items():
            last = src == self.nodes[-1].name
            if len(readers) > 2 or (last and readers) or (not last and not readers):
                what = repr(src) if src else "the graph input"
                raise BuildError(f"graph {self.name}: the output of {what} is read by "
                                 f"{len(readers)} nodes (1 or 2 expected; 0 for the last)")
        return self

    # --- serialization: graph.json (scalars) + graph.npz (arrays) ---
    def to_dict(self) -> dict:
        nodes = []
        for n in self.nodes:
            d = {"kind": n.kind}
            for f in fields(n):
                v = getattr(n, f.name)
                if f.name in n.ARRAYS:
                    continue
                d[f.name] = asdict(v) if isinstance(v, Stream) else (list(v) if isinstance(v, tuple) else v)
            nodes.append(d)
        return {"name": self.name, "input": asdict(self.input), "logit_scale": self.logit_scale,
                "num_classes": self.num_classes, "meta": self.meta,
                "runtime_weights": self.runtime_weights, "nodes": nodes}

    def save(self, folder) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "graph.json").write_text(json.dumps(self.to_dict(), indent=2, default=jsonable))
        arrays = {f"{n.name}.{a}": getattr(n, a) for n in self.nodes for a in n.ARRAYS
                  if getattr(n, a) is not None}
        np.savez(folder / "graph.npz", **arrays)

    @classmethod
    def load(cls, folder) -> "Graph":
        """Read graph.json + graph.npz of a build folder; a missing, damaged or tampered pair
        is one GraphError line (its names are re-checked: they reach generated files)."""
        folder = Path(folder)
        try:
            d = json.loads((folder / "graph.json").read_bytes().decode("utf-8"))
            with np.load(folder / "graph.npz", allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            nodes = []
            for nd in d["nodes"]:
                nd = dict(nd)
                kind = nd.pop("kind")
                node_cls = NODE_TYPES[kind]
                check_name(nd["name"], "node name", GraphError, ident=True)
                for sf in STREAM_FIELDS:
                    if sf in nd:
                        nd[sf] = Stream(**nd[sf])
                if not isinstance(nd.get("inputs", []), list):
                    raise ValueError("inputs is not a list")
                for a in node_cls.ARRAYS:
                    key = f"{nd['name']}.{a}"
                    nd[a] = arrays[key] if key in arrays else None
                nodes.append(node_cls(**nd))
            graph = cls(check_name(d["name"], "graph name", GraphError), nodes,
                        Stream(**d["input"]), float(d["logit_scale"]), int(d["num_classes"]),
                        dict(d.get("meta", {})))
            rw = d.get("runtime_weights", False)
            if not isinstance(rw, bool):
                raise ValueError("runtime_weights is not true or false")
            graph.runtime_weights = rw
        except GraphError as exc:
            raise GraphError(f"{folder}: {exc}") from None
        except FileNotFoundError as exc:
            raise GraphError(f"{folder}: not a build folder (no {Path(exc.filename).name})") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError,
                zipfile.BadZipFile, UnicodeDecodeError) as exc:
            raise GraphError(f"{folder}: damaged graph.json / graph.npz "
                             f"({type(exc).__name__}: {' '.join(str(exc).split())[:100]})") from None
        if not nodes:
            raise GraphError(f"{folder}: graph.json has no nodes")
        return graph


def _desc(s: Stream) -> str:
    return f"{s.h}x{s.w}x{s.c} {s.kind}{s.bits}"


def check_stream(s: Stream, what: str) -> None:
    if s.kind not in ("bit", "uint", "int"):
        raise BuildError(f"{what}: unknown stream kind {s.kind!r:.20}")
    if not isinstance(s.bits, int) or s.bits < 1 or (s.kind == "bit" and s.bits != 1):
        raise BuildError(f"{what}: {s.bits!r:.20} bits is not a {s.kind} stream")
    if min(s.h, s.w, s.c) < 1:
        raise BuildError(f"{what}: empty stream {_desc(s)}")


def _array(n, name: str, shape: tuple, lo=None, hi=None) -> np.ndarray:
    a = getattr(n, name)
    if a is None or np.shape(a) != shape:
        raise BuildError(f"node {n.name}: {name} shaped {np.shape(a) if a is not None else None}, "
                         f"expected {shape}")
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.integer):
        raise BuildError(f"node {n.name}: {name} must be integers, got {a.dtype}")
    if a.size and ((lo is not None and a.min() < lo) or (hi is not None and a.max() > hi)):
        raise BuildError(f"node {n.name}: {name} in [{a.min()}, {a.max()}], outside [{lo}, {hi}]")
    return a


def _width(n, name: str, bits: int, values: np.ndarray, signed: bool = True) -> None:
    if not isinstance(bits, int) or bits < 1:
        raise BuildError(f"node {n.name}: the width of its {name} is missing in the IR")
    if values.size:
        lo, hi = int(values.min()), int(values.max())
        need = signed_bits(lo, hi) if signed else unsigned_bits(hi)
        if need > bits or (not signed and lo < 0):
            raise BuildError(f"node {n.name}: {name} in [{lo}, {hi}] do not fit the IR's {bits} "
                             f"{'signed' if signed else 'unsigned'} bits")


def check_node(n) -> None:
    """The IR fields a node kind's hardware reads: its output size and channels, arrays of
    the right shapes and ranges, widths present and wide enough, stream kinds its arithmetic
    takes (docs/ARITHMETIC.md). Both backends rely on it (Graph.validate), so they refuse a
    damaged IR identically."""
    i, o = n.inp, n.out
    if isinstance(n.param_bits, bool) or not isinstance(n.param_bits, int) or \
            not 0 <= n.param_bits <= 64:
        raise BuildError(f"node {n.name}: param_bits {n.param_bits!r:.20} outside 0..64")
    if hasattr(n, "k"):
        want = (out_dim(i.h, n.k, n.stride, n.pad), out_dim(i.w, n.k, n.stride, n.pad))
        if n.k < 1 or n.stride < 1 or n.pad < 0 or min(want) < 1:
            raise BuildError(f"node {n.name}: window k{n.k} s{n.stride} p{n.pad} does "
                             f"not fit its {i.h}x{i.w} input")
    elif n.kind == "globalsum":
        want = (1, 1)
    elif n.kind == "resadd":
        want = (i.h, i.w)
        b = n.inp_b
        if (b.h, b.w, b.c) != (i.h, i.w, i.c):
            raise BuildError(f"node {n.name}: a residual add joins equal maps, got {_desc(i)} "
                             f"and {_desc(b)}")
    else:
        want = (i.h, i.w)
    if (o.h, o.w) != want:
        raise BuildError(f"node {n.name}: output {o.h}x{o.w}, but its {n.kind} on "
                         f"{i.h}x{i.w} gives {want[0]}x{want[1]}")
    if n.kind != "conv" and n.kind != "scalemac" and o.c != i.c:
        raise BuildError(f"node {n.name}: a {n.kind} keeps its {i.c} channels, "
                         f"output has {o.c}")
    if n.pe < 1 or n.simd < 1:
        raise BuildError(f"node {n.name}: PE and SIMD must be positive")
    if getattr(n, "weight_mem", "auto") not in ("auto", "uram", "dram"):
        raise BuildError(f"node {n.name}: unknown weight memory {n.weight_mem!r:.20} "
                         f"(auto, uram or dram)")
    if n.kind == "conv":
        b = n.batch
        if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= 4096:
            raise BuildError(f"node {n.name}: batch {b!r:.20} must be an integer in 1..4096")
        if b > 1 and n.weight_mem != "dram":
            raise BuildError(f"node {n.name}: batch {b} needs DRAM-streamed weights "
                             f"(weight_mem 'dram')")
        if n.weight_mem == "dram" and not (n.matrix == "xnor" and (o.h, o.w) == (1, 1)
                                           and n.k == i.h == i.w and n.pad == 0):
            raise BuildError(f"node {n.name}: weight_mem 'dram' needs a binary fully-connected "
                             f"layer (generator/hw/dram.py eligible)")
    elif getattr(n, "weight_mem", "auto") == "dram":
        raise BuildError(f"node {n.name}: only fully-connected convolutions stream their "
                         f"weights from DRAM, not a {n.kind}")
    if n.kind == "conv":
        if n.matrix not in ("xnor", "int8"):
            raise BuildError(f"node {n.name}: unknown matrix {n.matrix!r:.20}")
        xnor = n.matrix == "xnor"
        if (i.kind, i.bits) != (("bit", 1) if xnor else ("uint", 8)):
            raise BuildError(f"node {n.name}: the {n.matrix} matrix needs a "
                             f"{'bit' if xnor else 'uint8'} input stream, got {i.kind}{i.bits}")
        _array(n, "weights", (o.c, n.K), 0 if xnor else -128, 1 if xnor else 127)
        if not isinstance(n.acc_bits, int) or n.acc_bits < 1:
            raise BuildError(f"node {n.name}: acc_bits missing in the IR")
        if n.act == "threshold":
            if o.kind != "bit":
                raise BuildError(f"node {n.name}: a threshold activation needs a bit output stream")
            _width(n, "thresholds", n.thr_bits, _array(n, "thresholds", (o.c,)))
            _array(n, "direction", (o.c,), -1, 1)
        elif n.act == "relu_offset":
            if o.kind == "bit":
                raise BuildError(f"node {n.name}: relu_offset needs an int/uint output stream")
            _array(n, "offset", (o.c,))
            _array(n, "sign", (o.c,), -1, 1)
        else:
            raise BuildError(f"node {n.name}: unknown activation {n.act!r:.20}")
    elif n.kind == "maxpool":
        if (o.kind, o.bits) != (i.kind, i.bits):
            raise BuildError(f"node {n.name}: a max-pool keeps its {i.kind}{i.bits} values, "
                             f"output is {o.kind}{o.bits}")
        if n.invert is not None:
            _array(n, "invert", (i.c,), 0, 1)
    elif n.kind == "avgpool":
        if i.kind == "bit" or o.kind != "bit":
            raise BuildError(f"node {n.name}: an average pool maps an int/uint stream to bits")
        if not isinstance(n.sum_bits, int) or n.sum_bits < 1:
            raise BuildError(f"node {n.name}: sum_bits missing in the IR")
        _width(n, "thresholds", n.thr_bits, _array(n, "thresholds", (i.c,)))
        _array(n, "direction", (i.c,), -1, 1)
    elif n.kind == "scalemac":
        if i.kind == "bit":
            raise BuildError(f"node {n.name}: a scale MAC needs an int/uint input stream")
        if not isinstance(n.n, int) or n.n < 1 or i.c % n.n:
            raise BuildError(f"node {n.name}: group size n={n.n!r:.20} must divide C_in={i.c}")
        if n.pad != 0:
            raise BuildError(f"node {n.name}: a scale MAC window is unpadded (pad {n.pad!r:.20})")
        _array(n, "weights", (o.c, n.k * n.k * i.c), -128, 127)
        _width(n, "scales", n.scale_bits, _array(n, "scales", (i.c // n.n,), 0), signed=False)
        _array(n, "bias", (o.c,))
        for f in ("group_bits", "acc_bits"):
            if not isinstance(getattr(n, f), int) or getattr(n, f) < 1:
                raise BuildError(f"node {n.name}: {f} missing in the IR")
        if not n.relu and o.kind != "int":
            raise BuildError(f"node {n.name}: without ReLU the output stream must be 'int'")
    elif n.kind == "globalsum":
        if i.kind == "bit":
            raise BuildError(f"node {n.name}: a global sum needs an int/uint input stream")
    elif n.kind == "resadd":
        if i.kind == "bit" or n.inp_b.kind == "bit" or o.kind != "int":
            raise BuildError(f"node {n.name}: a residual add maps two int/uint streams to an "
                             f"int stream")
        for a in ("ma", "mb"):
            _width(n, a, n.m_bits, _array(n, a, (i.c,)))
        _width(n, "bias", n.bias_bits, _array(n, "bias", (i.c,)))
        if not isinstance(n.shift, int) or not 0 <= n.shift <= 48:
            raise BuildError(f"node {n.name}: shift {n.shift!r:.20} outside 0..48")
        if not isinstance(n.acc_bits, int) or n.acc_bits < 2:
            raise BuildError(f"node {n.name}: acc_bits missing in the IR")
        if not isinstance(n.skip_depth, int) or n.skip_depth < 0:
            raise BuildError(f"node {n.name}: skip_depth {n.skip_depth!r:.20} is not a depth")


def jsonable(v):
    """json.dumps default= for numpy scalars and arrays."""
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(type(v))


def signed_bits(lo: int, hi: int) -> int:
    """Smallest two's complement width holding every integer in [lo, hi]."""
    b = 1
    while not (-(1 << (b - 1)) <= lo and hi <= (1 << (b - 1)) - 1):
        b += 1
    return b


def unsigned_bits(hi: int) -> int:
    return max(1, int(hi).bit_length())


def clog2(n: int) -> int:
    """Bits to address n entries (Verilog $clog2)."""
    return max(0, (int(n) - 1).bit_length())


def next_pow2(n: int) -> int:
    p = 1
    while p < n:
        p <<= 1
    return p
