"""QONNX in and out: Brevitas / FINN models <-> cfgen checkpoints (docs/BREVITAS.md).

`import_onnx(path)` reads a QONNX graph of a binarized CNN (the form `qonnx-cleanup` leaves)
and returns a Checkpoint; `export_onnx(ckpt, path)` writes a cfgen model as QONNX with its
spec and CF n in the model's metadata, so that importing an export gives back the same
tensors. The ONNX file is parsed as a protobuf only (never unpickled, never executed, no
external data); every name taken from it is checked or mapped to a safe identifier, and
anything outside the supported subset is refused with one line naming the node, its op and
why. onnx / qonnx are imported lazily: the rest of cfgen does not pay for them.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import CfgenError, SpecError
from ..core.escape import one_line
from ..core.jsonfile import regular_file, replaceable_file
from .spec import out_dim
from ..core.names import check_name, name_from

META_FORMAT = "cfgen.format"       # "cfgen-qonnx 1"
META_SPEC = "cfgen.spec"           # the resolved spec (names, training-only fields, cf)
META_CF = "cfgen.cf"               # {layer name: n} of every binary layer
META_BATCHES = "cfgen.num_batches_tracked"  # {batchnorm layer name: count}
FORMAT_TAG = "cfgen-qonnx 1"

QONNX_DOMAINS = ("qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general")
STANDARD_DOMAINS = ("", "ai.onnx")
MAX_ONNX_BYTES = (1 << 31) - 1     # protobuf's own limit
MAX_NODES = 20_000
MAX_TENSOR_ELEMENTS = 1 << 28      # the spec's parameter budget
MAX_META_CHARS = 1 << 22
EXPORT_OPSET = 13
EXPORT_IR_VERSION = 8
INPUT_SCALE = 1.0 / 255.0
# ops that only compute shapes: a graph holding them has not been through qonnx-cleanup
MIN_INPUTS = {"Reshape": 2, "Conv": 2, "Gemm": 2, "MatMul": 2, "Add": 2, "BatchNormalization": 5,
              "Quant": 4, "BipolarQuant": 2}
SHAPE_OPS = ("Shape", "ConstantOfShape", "Concat", "Slice", "Gather", "Cast", "Unsqueeze",
             "Squeeze", "Range", "Expand", "Transpose")


class QonnxError(CfgenError):
    """An ONNX file cannot be imported (or a model cannot be exported)."""


def _onnx():
    """The onnx package, or a one-line error saying how to get it."""
    try:
        import onnx
        from onnx import numpy_helper  # noqa: F401
    except ImportError:
        raise QonnxError("QONNX import/export needs the Python packages onnx==1.23.2 and "
                         "qonnx==1.0.0 (run `make setup`, or pip install -r requirements.txt)") \
            from None
    return onnx


def _qonnx_quant():
    """qonnx's reference implementations of Quant and BipolarQuant (the exact arithmetic
    execute_onnx uses)."""
    _onnx()
    try:
        from qonnx.custom_op.general.bipolar_quant import binary_quant
        from qonnx.custom_op.general.intquant import int_quant
    except ImportError:
        raise QonnxError("QONNX import needs the Python package qonnx==1.0.0 (run `make "
                         "setup`, or pip install -r requirements.txt)") from None
    return int_quant, binary_quant


def is_onnx_path(path) -> bool:
    return str(path).lower().endswith(".onnx")


def load_model_file(path):
    """A Checkpoint from a cfgen checkpoint (.pt) or a QONNX file (.onnx)."""
    if is_onnx_path(path):
        return import_onnx(path).checkpoint
    from .checkpoint import load_checkpoint
    return load_checkpoint(path)


def _show(x) -> str:
    return one_line(str(x), 200)


# --------------------------------------------------------------------------- reading

def read_model(path):
    """Parse the file as an ONNX ModelProto: bounded, regular file, no external data."""
    onnx = _onnx()
    shown = _show(path)
    st = regular_file(path, "ONNX", QonnxError, shown)
    if st.st_size == 0:
        raise QonnxError(f"{shown}: empty file, not an ONNX model")
    if st.st_size > MAX_ONNX_BYTES:
        raise QonnxError(f"{shown}: {st.st_size:,} bytes, more than an ONNX file can hold")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_ONNX_BYTES + 1)
    except OSError as exc:
        raise QonnxError(f"{shown}: cannot read: {(exc.strerror or str(exc)).lower()}") from None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception:  # google.protobuf.message.DecodeError, RuntimeWarning, ...
        raise QonnxError(f"{shown}: not an ONNX model (corrupt, truncated or foreign file)") \
            from None
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.node:
        raise QonnxError(f"{shown}: not an ONNX model (no graph; corrupt, truncated or "
                         "foreign file)")
    return model


@dataclass
class Weight:
    """A constant weight tensor as the graph computes it, and where it came from."""
    kind: str                      # "float" | "bipolar" | "int"
    value: np.ndarray              # what the graph feeds the Conv / Gemm (float32)
    latent: np.ndarray | None = None   # BipolarQuant's input
    scale: np.ndarray | None = None    # BipolarQuant's scale
    node: str = ""
    bits: int | None = None


@dataclass
class Imported:
    checkpoint: object
    notes: list = field(default_factory=list)     # what was inferred / changed, one line each


class _Reader:
    def __init__(self, model, source: str):
        from onnx import numpy_helper

        self.nh = numpy_helper
        self.model = model
        self.graph = model.graph
        self.source = source
        self.notes: list[str] = []
        self.consts: dict[str, np.ndarray] = {}
        self.weights: dict[str, Weight] = {}
        self.layers: list[dict] = []
        self.params: list[dict] = []       # per layer: tensors (numpy)
        self.onnx_names: list[str] = []    # per layer: the ONNX node it came from
        self.declared: dict[str, tuple] = {}

    # --- helpers --------------------------------------------------------------
    def fail(self, node, why: str) -> QonnxError:
        name = one_line(node.name or "(unnamed)", 80)
        return QonnxError(f"{_show(self.source)}: node {name} ({one_line(node.op_type, 40)}): "
                          f"{why}")

    def error(self, why: str) -> QonnxError:
        return QonnxError(f"{_show(self.source)}: {why}")

    def attrs(self, node) -> dict:
        from onnx import helper

        out = {}
        for a in node.attribute:
            try:
                v = helper.get_attribute_value(a)
            except Exception:
                raise self.fail(node, f"attribute {one_line(a.name, 40)} cannot be read") from None
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            out[a.name] = v
        return out

    def tensor(self, t, what: str) -> np.ndarray:
        if t.data_location == 1 or t.external_data:     # EXTERNAL
            raise self.error(f"{what}: stored as external data; cfgen reads self-contained "
                             "ONNX files only")
        n = 1
        for d in t.dims:
            if d < 0:
                raise self.error(f"{what}: negative dimension")
            n *= d
        if n > MAX_TENSOR_ELEMENTS:
            raise self.error(f"{what}: {n:,} elements, more than the {MAX_TENSOR_ELEMENTS:,} "
                             "cfgen accepts")
        try:
            a = self.nh.to_array(t)
        except Exception as exc:
            raise self.error(f"{what}: damaged tensor ({one_line(type(exc).__name__, 40)})") \
                from None
        if a.dtype.kind not in "fiub":
            raise self.error(f"{what}: tensor of type {a.dtype}, not a number")
        return a

    def const(self, node, name: str, what: str) -> np.ndarray:
        if name not in self.consts:
            raise self.fail(node, f"{what} ({one_line(name, 60)}) is not a constant")
        return self.consts[name]

    def float_const(self, node, name: str, what: str, shape=None) -> np.ndarray:
        a = self.const(node, name, what)
        if a.dtype != np.float32:
            raise self.fail(node, f"{what} is {a.dtype}, not float32")
        if not np.all(np.isfinite(a)):
            raise self.fail(node, f"{what} holds non-finite values (NaN or Inf)")
        if shape is not None:
            if a.size != int(np.prod(shape)):
                raise self.fail(node, f"{what} has shape {tuple(a.shape)}, expected "
                                      f"{tuple(shape)}")
            a = a.reshape(shape)
        return a

    def scalar(self, node, name: str, what: str) -> float:
        a = self.float_const(node, name, what)
        if a.size != 1:
            raise self.fail(node, f"{what} must be one number (per tensor), got shape "
                                  f"{tuple(a.shape)}")
        return float(a.reshape(()))

    def check_scale(self, node, s: np.ndarray, what: str = "scale") -> None:
        if not np.all(np.isfinite(s)):
            raise self.fail(node, f"{what} is not finite")
        if np.any(s == 0):
            raise self.fail(node, f"{what} is zero")
        if np.any(s < 0):
            raise self.fail(node, f"{what} is negative")

    # --- graph level ------------------------------------------------------------
    def read(self):
        g = self.graph
        # one wrapper object per node, kept alive: id(node) identifies it below
        self.nodes = list(g.node)
        if len(g.node) > MAX_NODES:
            raise self.error(f"{len(g.node):,} nodes, more than the {MAX_NODES:,} cfgen reads")
        opsets = {o.domain: o.version for o in self.model.opset_import}
        if not any(d in opsets for d in STANDARD_DOMAINS):
            raise self.error("no standard ONNX opset imported")
        for t in g.initializer:
            self.consts[t.name] = self.tensor(t, f"initializer {one_line(t.name, 60)}")
        for t in g.sparse_initializer:
            raise self.error("sparse initializers are not supported")
        for vi in list(g.value_info) + list(g.output):
            shape = self.vi_shape(vi)
            if shape is not None:
                self.declared[vi.name] = shape
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise self.error(f"the graph has {len(inputs)} data inputs; cfgen models take one "
                             "image tensor")
        if len(g.output) != 1:
            raise self.error(f"the graph has {len(g.output)} outputs; cfgen models have one")
        self.input_shape = self.input_dims(inputs[0])
        self.out_name = g.output[0].name
        for node in self.nodes:
            if node.domain not in STANDARD_DOMAINS + QONNX_DOMAINS:
                raise self.fail(node, f"operator domain {one_line(node.domain, 60)!r} is not "
                                      "ONNX or QONNX")
        self.fold_constants()
        return self.walk(inputs[0].name)

    def vi_shape(self, vi):
        t = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if t is None or not t.HasField("shape"):
            return None
        dims = []
        for d in t.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else None)
        return tuple(dims)

    def input_dims(self, vi) -> tuple[int, int, int]:
        t = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        name = one_line(vi.name, 60)
        if t is None:
            raise self.error(f"input {name} is not a tensor")
        if t.elem_type != 1:
            raise self.error(f"input {name} is not float32 (cfgen's input is pixels / 255)")
        if not t.HasField("shape") or len(t.shape.dim) != 4:
            raise self.error(f"input {name} must have a fixed (N, C, H, W) shape")
        dims = list(t.shape.dim)
        chw = []
        for axis, d in zip("CHW", dims[1:]):
            if not d.HasField("dim_value") or d.dim_value <= 0:
                raise self.error(f"input {name}: dynamic shape (dimension {axis} is "
                                 f"{one_line(d.dim_param or '?', 40)!r}); cfgen needs fixed "
                                 "C, H and W")
            chw.append(int(d.dim_value))
        if dims[0].HasField("dim_value") and dims[0].dim_value <= 0:
            raise self.error(f"input {name}: batch dimension {dims[0].dim_value}")
        return tuple(chw)

    def fold_constants(self) -> None:
        """Constant nodes, Identity of constants, and weight quantizers (Quant / BipolarQuant
        whose inputs are all constants) become constant tensors."""
        int_quant, binary_quant = _qonnx_quant()
        self.const_nodes = set()
        for node in self.nodes:
            if node.op_type == "Constant" and node.domain in STANDARD_DOMAINS:
                a = self.attrs(node)
                if "value" not in a or len(node.output) != 1:
                    raise self.fail(node, "only tensor-valued Constant nodes are supported")
                self.consts[node.output[0]] = self.tensor(
                    next(x for x in node.attribute if x.name == "value").t,
                    f"constant {one_line(node.output[0], 60)}")
                self.const_nodes.add(id(node))
        changed = True
        while changed:
            changed = False
            for node in self.nodes:
                if id(node) in self.const_nodes or not node.input:
                    continue
                if not all(i in self.consts or i in self.weights for i in node.input if i):
                    continue
                if node.op_type == "Identity" and len(node.input) == 1:
                    src = node.input[0]
                    if src in self.weights:
                        self.weights[node.output[0]] = self.weights[src]
                    else:
                        self.consts[node.output[0]] = self.consts[src]
                elif node.op_type in ("Quant", "BipolarQuant") and node.domain in QONNX_DOMAINS:
                    if node.input[0] in self.weights:
                        raise self.fail(node, "quantizes an already quantized weight")
                    need = MIN_INPUTS[node.op_type]
                    if len(node.input) != need or not node.output:
                        raise self.fail(node, f"takes {need} inputs")
                    try:
                        self.weights[node.output[0]] = self.weight_quant(node, int_quant,
                                                                         binary_quant)
                    except (ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
                        raise self.fail(node, f"malformed node ({type(exc).__name__})") from None
                else:
                    continue
                self.const_nodes.add(id(node))
                changed = True

    def weight_quant(self, node, int_quant, binary_quant) -> Weight:
        latent = self.float_const(node, node.input[0], "weight")
        if node.op_type == "BipolarQuant":
            if len(node.input) != 2:
                raise self.fail(node, "BipolarQuant takes (x, scale)")
            scale = self.float_const(node, node.input[1], "scale")
            self.check_scale(node, scale)
            try:
                value = binary_quant(latent, scale)
            except ValueError:
                raise self.fail(node, f"scale of shape {tuple(scale.shape)} does not "
                                      f"broadcast to the weight {tuple(latent.shape)}") from None
            if value.shape != latent.shape:
                raise self.fail(node, f"scale of shape {tuple(scale.shape)} changes the weight's "
                                      f"shape {tuple(latent.shape)}")
            return Weight("bipolar", value.astype(np.float32), latent, scale, node.name, 1)
        a = self.attrs(node)
        if len(node.input) != 4:
            raise self.fail(node, "Quant takes (x, scale, zeropt, bitwidth)")
        scale = self.float_const(node, node.input[1], "scale")
        self.check_scale(node, scale)
        zeropt = self.float_const(node, node.input[2], "zero point")
        bits = self.scalar(node, node.input[3], "bit width")
        if bits == 1:
            raise self.fail(node, "a 1-bit Quant of weights is not binary {-1, +1} (signed it "
                                  "holds {-1, 0}, narrow range only 0: Brevitas' default "
                                  "quantizer then has an infinite scale); export binary weights "
                                  "with SignedBinaryWeightPerTensorConst (BipolarQuant)")
        if bits != int(bits) or not 2 <= bits <= 8:
            raise self.fail(node, f"{bits:g}-bit weights: cfgen's full-precision layers are "
                                  "int8 in hardware (2..8-bit weight Quant, or BipolarQuant)")
        for key, allowed in (("signed", (0, 1)), ("narrow", (0, 1))):
            if a.get(key, 1) not in allowed:
                raise self.fail(node, f"attribute {key} must be 0 or 1")
        mode = a.get("rounding_mode", "ROUND")
        if not isinstance(mode, str) or mode.upper() not in ("ROUND", "ROUND_TO_ZERO", "CEIL",
                                                              "FLOOR", "HALF_UP", "HALF_DOWN"):
            raise self.fail(node, f"rounding mode {one_line(str(mode), 30)!r} is not supported")
        try:
            value = int_quant(latent, scale, zeropt, np.array(bits, np.float32), a.get("signed", 1), a.get("narrow", 0),
                              mode)
        except ValueError:
            raise self.fail(node, "scale or zero point does not broadcast to the weight") from None
        value = np.asarray(value, np.float32)
        if value.shape != latent.shape:
            raise self.fail(node, "scale or zero point changes the weight's shape")
        if not np.all(np.isfinite(value)):
            raise self.fail(node, "the quantized weight is not finite")
        return Weight("int", value, latent, scale, node.name, int(bits))

    # --- the activation chain ----------------------------------------------------
    def walk(self, start: str):
        consumers: dict[str, list] = {}
        producers: dict[str, object] = {}
        for node in self.nodes:
            if id(node) in self.const_nodes:
                continue
            producers.update({o: node for o in node.output if o})
            for i in dict.fromkeys(node.input):
                if i:
                    consumers.setdefault(i, []).append(node)
        c, h, w = self.input_shape
        self.shape: tuple = (c, h, w)
        self.binar = None          # activation scale of a pending BipolarQuant
        self.pad = None            # (padding, value) of a pending Pad
        self.matrix_seen = False
        self.last_matrix = None    # layer index of a conv/linear just emitted (for Add bias)
        cur = start
        seen = set()
        while True:
            nodes = consumers.get(cur, [])
            if not nodes:
                if cur != self.out_name:
                    raise self.error(f"tensor {one_line(cur, 60)} is used by no node and is not "
                                     "the graph output")
                break
            if len(nodes) > 1:
                names = ", ".join(one_line(n.name or n.op_type, 40) for n in nodes[:3])
                raise self.error(f"tensor {one_line(cur, 60)} feeds {len(nodes)} nodes ({names}): "
                                 "branches and residual blocks are not supported")
            if cur == self.out_name:
                raise self.error(f"the graph output {one_line(cur, 60)} is also used inside the "
                                 "graph")
            node = nodes[0]
            if id(node) in seen:
                raise self.fail(node, "the graph has a cycle")
            seen.add(id(node))
            if node.domain in QONNX_DOMAINS and node.op_type not in ("Quant", "BipolarQuant"):
                raise self.fail(node, "QONNX operator not in the supported subset")
            data_inputs = [i for i in node.input if i and i not in self.consts
                           and i not in self.weights]
            if node.op_type == "Add" and len(data_inputs) == 2:
                raise self.fail(node, "an Add of two activations (a residual connection) is "
                                      "not supported yet")
            if data_inputs != [cur]:
                computed = [i for i in data_inputs if i != cur and i in producers
                            and producers[i].op_type in SHAPE_OPS]
                if computed:
                    raise self.fail(node, f"input {one_line(computed[0], 60)} is computed by "
                                          "shape operators; run `qonnx-cleanup` on the file "
                                          "first (it folds them into constants)")
                raise self.fail(node, "must take exactly one activation input")
            if node.input[0] != cur and node.op_type not in ("Add", "Mul"):
                raise self.fail(node, "the activation must be its first input")
            handler = getattr(self, f"op_{node.op_type}", None)
            if handler is None or node.domain not in STANDARD_DOMAINS + QONNX_DOMAINS:
                hint = ("; run `qonnx-cleanup` on the file first (it folds shape computations)"
                        if node.op_type in SHAPE_OPS else "")
                raise self.fail(node, f"operator not in the supported subset{hint}")
            outs = [o for o in node.output if o]
            if len(outs) != 1:
                extra = [o for o in outs[1:] if o in consumers or o == self.out_name]
                if extra or not outs:
                    raise self.fail(node, "only the first output may be used")
            need = MIN_INPUTS.get(node.op_type, 1)
            if len([i for i in node.input if i]) < need:
                raise self.fail(node, f"takes at least {need} inputs")
            was = len(self.layers)
            try:
                handler(node)
            except (ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
                # a malformed attribute or tensor the checks above did not name
                raise self.fail(node, f"malformed node ({type(exc).__name__})") from None
            if len(self.layers) > was and self.layers[-1]["type"] not in ("conv", "linear"):
                self.last_matrix = None
            cur = node.output[0]
            self.check_declared(node, cur)
        for node in self.nodes:
            if id(node) not in self.const_nodes and id(node) not in seen:
                raise self.fail(node, "is not on the path from the graph input to its output")
        if self.binar is not None:
            raise self.error("the graph ends in a BipolarQuant; cfgen models end in a "
                             "full-precision layer")
        if self.pad is not None:
            raise self.error("the graph ends in a Pad")
        if not self.layers:
            raise self.error("the graph holds no layer")

    def check_declared(self, node, name: str) -> None:
        want = self.declared.get(name)
        if want is None or self.pad is not None:
            return
        got = tuple(self.shape)
        if len(want) != len(got) + 1 or any(d is not None and d != g
                                             for d, g in zip(want[1:], got)):
            shown = "x".join("?" if d is None else str(d) for d in want)
            raise self.fail(node, f"its output is declared {shown}, but the ops give "
                                  f"(N, {', '.join(map(str, got))})")

    def emit(self, node, layer: dict, params: dict | None = None) -> None:
        self.layers.append(layer)
        self.params.append(params or {})
        self.onnx_names.append(node.name)

    def need_real(self, node, what: str) -> None:
        if self.binar is not None:
            raise self.fail(node, f"{what} of binarized (BipolarQuant) values: the next binary "
                                  "layer would see non-binary inputs")
        if self.pad is not None:
            raise self.fail(node, "a Pad must feed a Conv directly")

    def need_map(self, node) -> tuple[int, int, int]:
        if len(self.shape) != 3:
            raise self.fail(node, f"needs an (N, C, H, W) input, got (N, {self.shape[0]})")
        return self.shape

    def window(self, node, a: dict, kind: str) -> tuple[int, int, int]:
        for key in ("dilations",):
            if key in a and any(d != 1 for d in a[key]):
                raise self.fail(node, "dilation is not supported")
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID", ""):
            raise self.fail(node, f"auto_pad {a['auto_pad']} is not supported; use explicit pads")
        if a.get("ceil_mode", 0):
            raise self.fail(node, "ceil_mode 1 is not supported")
        ks = a.get("kernel_shape")
        if ks is None:
            raise self.fail(node, "no kernel_shape")
        strides = a.get("strides", [1, 1])
        pads = a.get("pads", [0, 0, 0, 0])
        if ks is not None and (len(ks) != 2 or ks[0] != ks[1] or ks[0] < 1):
            raise self.fail(node, f"kernel {ks}: only square 2-D kernels are supported")
        if len(strides) != 2 or strides[0] != strides[1] or strides[0] < 1:
            raise self.fail(node, f"strides {strides}: only equal strides are supported")
        if len(pads) != 4 or len(set(pads)) != 1 or pads[0] < 0:
            raise self.fail(node, f"pads {pads}: only symmetric padding is supported")
        return (ks[0] if ks is not None else None), strides[0], pads[0]

    def out_hw(self, node, h, w, k, s, p):
        oh, ow = out_dim(h, k, s, p), out_dim(w, k, s, p)
        if oh < 1 or ow < 1:
            raise self.fail(node, f"kernel {k} does not fit the {h}x{w} input")
        return oh, ow

    # --- ops ------------------------------------------------------------------------
    def op_Identity(self, node):
        pass

    def op_Dropout(self, node):
        a = self.attrs(node)
        if len(node.input) > 2 and node.input[2]:
            t = self.const(node, node.input[2], "training_mode")
            if np.any(t):
                raise self.fail(node, "training-mode dropout is not an inference graph")

    def op_Quant(self, node):
        a = self.attrs(node)
        if len(node.input) != 4:
            raise self.fail(node, "Quant takes (x, scale, zeropt, bitwidth)")
        bits = self.scalar(node, node.input[3], "bit width")
        if self.layers or self.matrix_seen or self.binar is not None:
            if bits == 1:
                raise self.fail(node, "a 1-bit activation Quant computes {-1, 0}, not binary "
                                      "{-1, +1}: use BipolarQuant (SignedBinaryActPerTensorConst)")
            raise self.fail(node, f"a {bits:g}-bit activation quantizer: cfgen's activations "
                                  "are 1-bit (BipolarQuant) into binary layers and real-valued "
                                  "elsewhere; only the input may carry an 8-bit Quant")
        # On the graph input: must pass pixels / 255 through unchanged.
        int_quant, _ = _qonnx_quant()
        scale = self.float_const(node, node.input[1], "scale")
        self.check_scale(node, scale)
        zeropt = self.float_const(node, node.input[2], "zero point")
        if scale.size != 1 or zeropt.size != 1:
            raise self.fail(node, "the input quantizer must be per tensor")
        x = (np.arange(256, dtype=np.float32) / np.float32(255.0))
        try:
            y = int_quant(x, scale.reshape(()), zeropt.reshape(()), np.array(bits, np.float32),
                          a.get("signed", 1),
                          a.get("narrow", 0), str(a.get("rounding_mode", "ROUND")))
        except Exception:
            raise self.fail(node, "cannot evaluate the input quantizer") from None
        err = float(np.max(np.abs(np.asarray(y, np.float64) - x)))
        if not err <= 1e-6:
            raise self.fail(node, f"the input quantizer changes pixels / 255 by up to {err:.3g}; "
                                  "cfgen's input is uint8 pixels / 255 (a uint8 Quant with scale "
                                  "1/255 passes them unchanged)")
        self.notes.append(f"input: {bits:g}-bit Quant {one_line(node.name, 40)} passes "
                          f"pixels/255 through (max change {err:.2g}); dropped")

    def op_BipolarQuant(self, node):
        if len(node.input) != 2:
            raise self.fail(node, "BipolarQuant takes (x, scale)")
        if not self.layers:
            raise self.fail(node, "binarizes the input pixels; cfgen's first layer reads "
                                  "uint8 pixels")
        if self.pad is not None:
            raise self.fail(node, "a Pad must feed a Conv directly")
        s = self.scalar(node, node.input[1], "activation scale")
        self.check_scale(node, np.array(s), "activation scale")
        self.binar = s

    def op_Pad(self, node):
        a = self.attrs(node)
        if a.get("mode", "constant") != "constant":
            raise self.fail(node, f"mode {a.get('mode')} is not supported (constant only)")
        if len(node.input) < 2 or not node.input[1]:
            pads = a.get("pads")
            if pads is None:
                raise self.fail(node, "no pads")
            value = float(a.get("value", 0.0))
        else:
            pads = [int(x) for x in self.const(node, node.input[1], "pads").ravel()]
            value = 0.0
            if len(node.input) > 2 and node.input[2]:
                value = self.scalar(node, node.input[2], "constant_value")
        if len(node.input) > 3 and node.input[3]:
            raise self.fail(node, "Pad with axes is not supported")
        c, h, w = self.need_map(node)
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or \
                len({pads[2], pads[3], pads[6], pads[7]}) != 1 or pads[2] < 0:
            raise self.fail(node, f"pads {pads}: only equal padding of H and W is supported")
        if self.pad is not None:
            raise self.fail(node, "two Pads in a row")
        p = pads[2]
        if self.binar is not None:
            if value == -self.binar:
                kind = -1
            elif value == 0.0:
                kind = 0
            else:
                raise self.fail(node, f"pads binarized values with {value:g}; cfgen pads them "
                                      f"with -1 (times the activation scale) or 0")
        elif value in (0.0, -1.0):
            kind = int(value)
        else:
            raise self.fail(node, f"pads real values with {value:g}; only 0 (or -1 before "
                                  "binary weights) is supported there")
        self.pad = (p, kind)

    def op_MaxPool(self, node):
        if self.pad is not None:
            raise self.fail(node, "a Pad must feed a Conv directly")
        a = self.attrs(node)
        if a.get("storage_order", 0):
            raise self.fail(node, "storage_order 1 is not supported")
        c, h, w = self.need_map(node)
        k, s, p = self.window(node, a, "pool")
        if "strides" not in a:
            s = 1
        if 2 * p > k:
            raise self.fail(node, "padding must be at most half the kernel")
        oh, ow = self.out_hw(node, h, w, k, s, p)
        self.emit(node, {"type": "maxpool", "kernel": k, "stride": s, "padding": p})
        if self.binar is not None:
            self.notes.append(f"{one_line(node.name, 40)}: max-pool of binarized values moved "
                              "before the sign (they commute: exact)")
        self.shape = (c, oh, ow)

    def op_AveragePool(self, node):
        self.need_real(node, "an average")
        a = self.attrs(node)
        c, h, w = self.need_map(node)
        k, s, p = self.window(node, a, "pool")
        if "strides" not in a:
            s = 1
        if p and not a.get("count_include_pad", 0):
            raise self.fail(node, "padding with count_include_pad 0 is not supported (cfgen "
                                  "averages like PyTorch: padded zeros count)")
        if 2 * p > k:
            raise self.fail(node, "padding must be at most half the kernel")
        oh, ow = self.out_hw(node, h, w, k, s, p)
        self.emit(node, {"type": "avgpool", "kernel": k, "stride": s, "padding": p})
        self.shape = (c, oh, ow)

    def op_GlobalAveragePool(self, node):
        self.need_real(node, "an average")
        c, h, w = self.need_map(node)
        if h != w:
            raise self.fail(node, f"global average over a {h}x{w} map: only square maps")
        self.emit(node, {"type": "avgpool", "kernel": h, "stride": h, "padding": 0})
        self.shape = (c, 1, 1)

    def op_Relu(self, node):
        self.need_real(node, "a ReLU")
        self.emit(node, {"type": "relu"})

    def op_BatchNormalization(self, node):
        self.need_real(node, "a batch norm")
        a = self.attrs(node)
        if a.get("training_mode", 0):
            raise self.fail(node, "training_mode 1 is not an inference graph")
        if len(node.input) != 5:
            raise self.fail(node, "BatchNormalization takes 5 inputs")
        c = self.shape[0]
        gamma, beta, mean, var = (self.float_const(node, node.input[i], what, (c,))
                                  for i, what in ((1, "scale"), (2, "bias"), (3, "mean"),
                                                  (4, "variance")))
        if np.any(var < 0):
            raise self.fail(node, "negative variance")
        eps = a.get("epsilon", 1e-5)
        if not isinstance(eps, float) or not math.isfinite(eps) or eps <= 0:
            raise self.fail(node, "epsilon must be a positive number")
        # ONNX stores float32: take the shortest decimal that is that float32 (1e-4, 1e-5)
        eps = float(str(np.float32(eps)))
        self.emit(node, {"type": "batchnorm", "affine": True, "eps": eps},
                  {"weight": gamma, "bias": beta, "running_mean": mean, "running_var": var})

    def op_Flatten(self, node):
        if self.pad is not None:
            raise self.fail(node, "a Pad must feed a Conv directly")
        a = self.attrs(node)
        if a.get("axis", 1) != 1:
            raise self.fail(node, "only axis 1 is supported")
        self.flatten(node)

    def flatten(self, node):
        if len(self.shape) == 3:
            self.emit(node, {"type": "flatten"})
            self.shape = (int(np.prod(self.shape)),)

    def op_Reshape(self, node):
        if self.pad is not None:
            raise self.fail(node, "a Pad must feed a Conv directly")
        target = [int(x) for x in self.const(node, node.input[1], "shape").ravel()]
        n = int(np.prod(self.shape))
        if len(target) != 2 or target[0] not in (-1, 0, 1) or target[1] not in (-1, n) or \
                target == [-1, -1]:
            raise self.fail(node, f"reshape to {target}: only flattening to (N, {n}) is "
                                  "supported")
        self.flatten(node)

    def op_Add(self, node):
        self.bias_op(node)

    def bias_op(self, node):
        other = next(i for i in node.input if i in self.consts or i in self.weights)
        if other in self.weights or self.last_matrix is None or self.binar is not None:
            raise self.fail(node, "an Add of a constant is supported only as the bias of the "
                                  "Conv / MatMul just before it")
        layer = self.layers[self.last_matrix]
        out = layer["out"]
        b = self.float_const(node, other, "bias")
        if layer["type"] == "conv":
            ok = b.shape in ((out, 1, 1), (1, out, 1, 1)) or b.size == 1 and b.ndim <= 4
        else:
            ok = b.shape in ((out,), (1, out)) or b.size == 1 and b.ndim <= 2
        if not ok:
            raise self.fail(node, f"constant of shape {tuple(b.shape)} is not a per-channel bias")
        b = np.broadcast_to(b.reshape(-1), (out,)).astype(np.float32)
        params = self.params[self.last_matrix]
        params["bias"] = (params["bias"] + b).astype(np.float32) if "bias" in params else b.copy()
        layer["bias"] = True

    def matrix(self, node, w: Weight, kind: str, out_axis: int) -> tuple[dict, dict]:
        """Precision and weights of a Conv / Gemm / MatMul from its weight's quantizer."""
        layer: dict = {}
        params: dict = {}
        out = w.value.shape[out_axis]
        first = not self.matrix_seen
        if w.kind == "bipolar":
            scale = np.broadcast_to(w.scale.astype(np.float32), w.latent.shape)
            per_out = np.moveaxis(scale, out_axis, 0).reshape(out, -1)
            if np.any(per_out != per_out[:, :1]):
                raise self.fail(node, "the weight scale varies inside a filter; cfgen scales "
                                      "whole filters (per tensor, per channel or per CF group)")
            if self.binar is not None:
                layer["precision"] = "xnor"
            elif first:
                layer["precision"] = "float"
                self.notes.append(f"{one_line(node.name, 40)}: binary-weight first layer "
                                  "(FINN CNV style): an int8 layer with weights in {-1, +1}")
            else:
                layer["precision"] = "bw"
                self.notes.append(f"{one_line(node.name, 40)}: binary weights on real-valued "
                                  "input (BW-CF): `build` has no hardware unit for it yet")
            if layer["precision"] != "float":
                a = self.binar if self.binar is not None else 1.0
                params["scale"] = (per_out[:, 0] * np.float32(a)).astype(np.float32)
                params["latent"] = np.moveaxis(w.latent, out_axis, 0)
                params["act_scale"] = a
                params["value"] = np.moveaxis(w.value, out_axis, 0) * np.float32(a)
        else:
            if self.binar is not None:
                raise self.fail(node, "binarized (BipolarQuant) input into a layer whose "
                                      "weights are not binary; cfgen's full-precision layers "
                                      "take real-valued inputs")
            layer["precision"] = "float"
        if layer["precision"] == "float":
            params["weight"] = np.ascontiguousarray(np.moveaxis(w.value, out_axis, 0))
        return layer, params

    def weight_of(self, node, name: str) -> Weight:
        if name in self.weights:
            return self.weights[name]
        if name in self.consts:
            v = self.float_const(node, name, "weight")
            return Weight("float", v, node=node.name)
        raise self.fail(node, "its weight is not a constant")

    def op_Conv(self, node):
        a = self.attrs(node)
        c, h, w = self.need_map(node)
        if a.get("group", 1) != 1:
            raise self.fail(node, "grouped / depthwise convolution is not supported")
        wt = self.weight_of(node, node.input[1])
        if wt.value.ndim != 4:
            raise self.fail(node, "only 2-D convolutions are supported")
        o, ci, kh, kw = wt.value.shape
        if kh != kw:
            raise self.fail(node, f"kernel {kh}x{kw}: only square kernels are supported")
        if "kernel_shape" in a and list(a["kernel_shape"]) != [kh, kw]:
            raise self.fail(node, "kernel_shape does not match the weight")
        a.setdefault("kernel_shape", [kh, kw])
        k, s, p = self.window(node, a, "conv")
        if ci != c:
            raise self.fail(node, f"weight takes {ci} input channels, the input has {c}")
        pad_value = None
        if self.pad is not None:
            if p:
                raise self.fail(node, "a Pad before a Conv that pads too")
            p, pad_value = self.pad
            self.pad = None
        elif p and self.binar is not None:
            pad_value = 0       # ONNX pads the binarized input with 0
        layer, params = self.matrix(node, wt, "conv", 0)
        if pad_value == -1 and layer["precision"] == "float":
            raise self.fail(node, "pads real-valued input with -1 before a full-precision "
                                  "convolution; cfgen pads those with 0")
        bias = None
        if len(node.input) > 2 and node.input[2]:
            bias = self.float_const(node, node.input[2], "bias", (o,))
        oh, ow = self.out_hw(node, h, w, k, s, p)
        layer.update({"type": "conv", "out": int(o), "kernel": int(k), "stride": int(s),
                      "padding": int(p), "bias": bias is not None})
        if layer["precision"] != "float":
            layer["pad_value"] = -1 if pad_value is None and layer["precision"] == "xnor" \
                else (pad_value if pad_value is not None else 0)
            if layer["precision"] == "xnor" and p and layer["pad_value"] == 0:
                self.notes.append(f"{one_line(node.name, 40)}: pads binarized inputs with 0 "
                                  "(pad_value 0): `build` refuses it, train with -1 padding")
        if bias is not None:
            params["bias"] = bias
        self.finish_matrix(node, layer, params)
        self.shape = (int(o), oh, ow)

    def finish_matrix(self, node, layer, params):
        self.emit(node, layer, params)
        self.matrix_seen = True
        self.binar = None
        self.last_matrix = len(self.layers) - 1

    def linear(self, node, wt: Weight, out_axis: int, bias):
        if self.pad is not None:
            raise self.fail(node, "a Pad must feed a Conv directly")
        if len(self.shape) != 1:
            raise self.fail(node, "needs a flat (N, F) input: put a Flatten before it")
        if wt.value.ndim != 2:
            raise self.fail(node, "the weight must be a matrix")
        o = wt.value.shape[out_axis]
        if wt.value.shape[1 - out_axis] != self.shape[0]:
            raise self.fail(node, f"weight takes {wt.value.shape[1 - out_axis]} features, the "
                                  f"input has {self.shape[0]}")
        layer, params = self.matrix(node, wt, "linear", out_axis)
        layer.update({"type": "linear", "out": int(o), "bias": bias is not None})
        if bias is not None:
            params["bias"] = bias
        self.finish_matrix(node, layer, params)
        self.shape = (int(o),)

    def op_Gemm(self, node):
        a = self.attrs(node)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            raise self.fail(node, "only Gemm with transA 0, alpha 1 and beta 1 is supported")
        wt = self.weight_of(node, node.input[1])
        out_axis = 0 if a.get("transB", 0) else 1
        bias = None
        if len(node.input) > 2 and node.input[2]:
            o = wt.value.shape[out_axis] if wt.value.ndim == 2 else 0
            bias = self.float_const(node, node.input[2], "bias")
            if bias.shape not in ((o,), (1, o)):
                raise self.fail(node, f"bias of shape {tuple(bias.shape)}; expected ({o},)")
            bias = bias.reshape(o)
        self.linear(node, wt, out_axis, bias)

    def op_MatMul(self, node):
        self.linear(node, self.weight_of(node, node.input[1]), 1, None)


# --------------------------------------------------------------------------- CF n

def infer_cf(scales: np.ndarray) -> int:
    """The largest n dividing len(scales) such that the scales are equal in every run of n."""
    out = len(scales)
    for n in sorted((d for d in range(1, out + 1) if out % d == 0), reverse=True):
        g = scales.reshape(-1, n)
        if np.all(g == g[:, :1]):
            return n
    return 1


def _parse_meta(model, source: str, notes: list) -> dict:
    meta = {}
    for p in model.metadata_props:
        if p.key in (META_FORMAT, META_SPEC, META_CF, META_BATCHES):
            if len(p.value) > MAX_META_CHARS:
                notes.append(f"metadata {p.key} is too long; ignored")
                continue
            meta[p.key] = p.value
    out = {}
    for key in (META_SPEC, META_CF, META_BATCHES):
        if key in meta:
            try:
                out[key] = json.loads(meta[key], parse_constant=lambda c: None)
            except (ValueError, RecursionError):
                notes.append(f"metadata {key} is not valid JSON; ignored")
    if META_FORMAT in meta and meta[META_FORMAT] != FORMAT_TAG:
        notes.append(f"metadata {META_FORMAT} {one_line(meta[META_FORMAT], 40)!r} is not "
                     f"{FORMAT_TAG!r}")
    return out


def _safe_ident(text: str, fallback: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]+", "_", str(text)).strip("_")
    s = re.sub(r"_+", "_", s)[:48].rstrip("_")
    if not s:
        return fallback
    if s[0].isdigit():
        s = f"n{s}"[:48]
    return s


STRUCT = ("out", "kernel", "stride", "padding", "pad_value", "precision", "bias")


def _align(spec_meta: dict, layers: list[dict], params: list[dict]):
    """Match the metadata spec's layers (its dropout layers are not in the graph) to the graph's.
    Returns the list of graph-layer indices per metadata layer (None for dropout) or a reason."""
    mapping = []
    j = 0
    for ml in spec_meta["layers"]:
        if ml["type"] == "dropout":
            mapping.append(None)
            continue
        if j >= len(layers):
            return None, "it has more layers than the graph"
        gl = layers[j]
        if ml["type"] != gl["type"]:
            return None, f"layer {ml['name']} is a {ml['type']}, the graph has a {gl['type']}"
        for key in STRUCT:
            if key in gl and key in ml and ml[key] != gl[key]:
                return None, f"layer {ml['name']}: {key} {ml[key]!r} vs {gl[key]!r} in the graph"
        if ml["type"] == "batchnorm":
            if np.float32(ml["eps"]) != np.float32(gl["eps"]):
                return None, f"layer {ml['name']}: eps differs"
            if not ml["affine"] and not (np.all(params[j]["weight"] == 1)
                                         and np.all(params[j]["bias"] == 0)):
                return None, f"layer {ml['name']}: affine false but the graph scales it"
        mapping.append(j)
        j += 1
    if j != len(layers):
        return None, "the graph has more layers than it"
    return mapping, None


def import_onnx(path) -> Imported:
    """Read a QONNX file and return the Checkpoint it describes, plus notes on what was
    inferred. Every refusal is a one-line QonnxError naming the file (and node)."""
    import torch

    from . import spec as specmod
    from .checkpoint import Checkpoint, check_resolved_spec, check_state_dict
    from .network import CFNet
    from .quant import group_scales

    source = str(path)
    model = read_model(path)
    reader = _Reader(model, source)
    reader.read()
    notes = reader.notes
    meta = _parse_meta(model, source, notes)
    layers, params = reader.layers, reader.params
    c, h, w = reader.input_shape
    where = lambda i: one_line(reader.onnx_names[i] or layers[i]["type"], 40)  # noqa: E731

    # names: from the ONNX nodes, mapped to identifiers
    used = set()
    for i, layer in enumerate(layers):
        base = _safe_ident(reader.onnx_names[i], f"{layer['type']}{i}")
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        layer["name"] = check_name(name, "layer name", QonnxError, ident=True)

    # metadata spec (cfgen's own export): names and training-only fields
    spec_meta = None
    if META_SPEC in meta:
        try:
            spec_meta = check_resolved_spec(meta[META_SPEC], f"{source} metadata")
        except (SpecError, CfgenError) as exc:
            notes.append(f"metadata {META_SPEC} ignored: {one_line(str(exc), 120)}")
        if spec_meta is not None:
            mapping, why = _align(spec_meta, layers, params)
            if mapping is None:
                notes.append(f"metadata {META_SPEC} ignored: it does not match the graph ({why})")
                spec_meta = None
            elif (spec_meta["input"]["channels"], spec_meta["input"]["height"],
                  spec_meta["input"]["width"]) != (c, h, w):
                notes.append(f"metadata {META_SPEC} ignored: its input differs from the graph's")
                spec_meta = None
    cf_meta = meta.get(META_CF) if isinstance(meta.get(META_CF), dict) else {}

    # CF n of every binary layer
    for i, layer in enumerate(layers):
        if layer["type"] not in ("conv", "linear"):
            continue
        if layer["precision"] == "float":
            layer["cf"] = None
            continue
        scales = params[i]["scale"]
        out = layer["out"]
        wanted = None
        if spec_meta is not None:
            j = mapping.index(i)
            wanted = spec_meta["layers"][j]["cf"]
        else:
            for key in (reader.onnx_names[i], layer["name"]):
                if key in cf_meta:
                    wanted = cf_meta[key]
        if wanted is not None:
            ok = (isinstance(wanted, int) and not isinstance(wanted, bool) and wanted >= 1
                  and out % wanted == 0
                  and np.all(scales.reshape(-1, wanted) == scales.reshape(-1, wanted)[:, :1]))
            if ok:
                layer["cf"] = wanted
                notes.append(f"layer {layer['name']}: CF-{wanted} from the metadata")
                continue
            notes.append(f"layer {layer['name']}: metadata CF n {one_line(repr(wanted), 20)} "
                         "does not fit its scales; inferred instead")
        n = infer_cf(scales)
        layer["cf"] = n
        kind = ("one per-tensor scale" if n == out else
                f"runs of {n} equal per-channel scales" if n > 1 else
                "all per-channel scales differ")
        notes.append(f"layer {layer['name']}: CF-{n} inferred ({kind}; {out} filters)")
        if spec_meta is not None and wanted is not None:
            spec_meta["layers"][mapping.index(i)]["cf"] = n

    # binary weights: keep the latent weights when cfgen's alpha_g = mean|W| over the group is
    # exactly the exported scale; else the binarized weights the graph computes.
    for i, layer in enumerate(layers):
        p = params[i]
        if "latent" not in p:
            continue
        n = layer["cf"]
        s_g = p["scale"].reshape(-1, n)[:, 0]
        latent = np.array(p.pop("latent"), np.float32, copy=True, order="C")
        a = p.pop("act_scale")
        value = np.ascontiguousarray(p.pop("value"), np.float32)
        scale = p.pop("scale")
        if a == 1.0 and torch.equal(group_scales(torch.from_numpy(latent), n),
                                    torch.from_numpy(s_g)):
            p["weight"] = latent
        else:
            p["weight"] = value
            why = ("the activation scale is folded in" if a != 1.0 else
                   "its scales are not mean|W| of the latent weights")
            notes.append(f"layer {layer['name']}: latent weights replaced by scale * sign(W) "
                         f"({why})")
        del scale

    # the spec
    num_classes = reader.shape[0] if len(reader.shape) == 1 else None
    if spec_meta is not None:
        spec = spec_meta
        final_layers = []
        final_params = []
        for j, ml in enumerate(spec["layers"]):
            gi = mapping[j]
            if gi is None:
                final_layers.append(ml)
                final_params.append({})
                continue
            gl = layers[gi]
            if ml["type"] in ("conv", "linear"):
                ml["cf"] = gl["cf"]
            final_layers.append(ml)
            final_params.append(params[gi])
        spec["layers"] = final_layers
        params = final_params
        notes.append(f"spec, layer names and training-only fields from the metadata "
                     f"({META_SPEC})")
    else:
        for layer in layers:
            for key, value in specmod.LAYER_FIELDS[layer["type"]].items():
                layer.setdefault(key, value)
        stem = Path(source).name
        stem = stem[:-5] if stem.lower().endswith(".onnx") else stem
        name = name_from(stem)
        spec = {"name": name, "description": f"imported from QONNX ({one_line(stem, 100)})",
                "input": {"channels": c, "height": h, "width": w}, "layers": layers,
                "resolved": True}
        if num_classes is not None:
            spec["num_classes"] = num_classes
    try:
        spec = check_resolved_spec(spec, source)
    except SpecError as exc:
        raise QonnxError(f"{_show(source)}: the graph is not a valid cfgen model: "
                         f"{one_line(str(exc), 200)}") from None

    # the state dict
    counts = meta.get(META_BATCHES) if isinstance(meta.get(META_BATCHES), dict) else {}
    net = CFNet(spec)
    state = {}
    ref = net.state_dict()
    for i, layer in enumerate(spec["layers"]):
        p = params[i]
        prefix = f"layers.{i}"
        if layer["type"] == "batchnorm":
            if layer["affine"]:
                state[f"{prefix}.weight"] = p["weight"]
                state[f"{prefix}.bias"] = p["bias"]
            state[f"{prefix}.running_mean"] = p["running_mean"]
            state[f"{prefix}.running_var"] = p["running_var"]
            nb = counts.get(layer["name"], 0) if spec_meta is not None else 0
            if isinstance(nb, bool) or not isinstance(nb, int) or not 0 <= nb < 2**62:
                nb = 0
            state[f"{prefix}.num_batches_tracked"] = np.array(nb, np.int64)
        elif layer["type"] in ("conv", "linear"):
            state[f"{prefix}.weight"] = p["weight"]
            if layer["bias"]:
                state[f"{prefix}.bias"] = p["bias"]
    sd = {}
    for k, v in state.items():
        t = torch.from_numpy(np.ascontiguousarray(v).copy())
        if k in ref and t.shape != ref[k].shape and t.numel() == ref[k].numel():
            t = t.reshape(ref[k].shape)
        sd[k] = t
    check_state_dict(spec, sd, f"{_show(source)}: imported tensors")
    net.load_state_dict(sd, strict=True)
    ckpt = Checkpoint(spec, {k: v.detach().clone() for k, v in net.state_dict().items()},
                      {"kind": "import", "from": source, "notes": list(notes)}, {}, source)
    return Imported(ckpt, notes)


# --------------------------------------------------------------------------- export

def export_model(ckpt):
    """The QONNX ModelProto of a checkpoint's float model (batch 1, as FINN expects)."""
    from . import spec as specmod

    block = specmod.has_residual(ckpt.spec)
    if block is not None:
        raise QonnxError(f"layer {block['name']}: QONNX export of residual blocks is not "
                         "supported yet")
    onnx = _onnx()
    import torch
    from onnx import TensorProto, helper, numpy_helper

    from . import spec as specmod
    from .quant import group_scales

    spec = ckpt.spec
    sd = ckpt.state_dict
    shapes = specmod.shapes(spec)
    nodes, inits, infos = [], [], []

    def init(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def info(name, shape):
        infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, *shape]))

    def t(key):
        return sd[key].detach().cpu().numpy()

    qdomain = QONNX_DOMAINS[0]
    c, h, w = shapes[0]
    x = "global_in"
    # uint8 pixels / 255: a uint8 Quant with scale 1/255 tells FINN the input is 8-bit
    nodes.append(helper.make_node("Quant", [x, init("input_scale", np.array(INPUT_SCALE,
                                                                            np.float32)),
                                            init("input_zeropt", np.array(0.0, np.float32)),
                                            init("input_bits", np.array(8.0, np.float32))],
                                  ["input_quant_out"], name="input_quant", domain=qdomain,
                                  signed=0, narrow=0, rounding_mode="ROUND"))
    x = "input_quant_out"
    info(x, shapes[0])
    counts = {}
    one = init("act_scale_one", np.array(1.0, np.float32))
    last = len(spec["layers"]) - 1
    for i, layer in enumerate(spec["layers"]):
        kind, name, pre = layer["type"], layer["name"], f"layers.{i}"
        out = "global_out" if i == last else f"{name}_out"
        if kind == "dropout":
            if i == last:
                nodes.append(helper.make_node("Identity", [x], [out], name=name))
                x = out
            continue
        if kind in ("conv", "linear"):
            wkey = init(f"{name}_weight", t(f"{pre}.weight"))
            if layer["precision"] != "float":
                if layer["precision"] == "xnor":
                    nodes.append(helper.make_node("BipolarQuant", [x, one], [f"{name}_sign"],
                                                  name=f"{name}_act", domain=qdomain))
                    x = f"{name}_sign"
                    info(x, shapes[i])
                alpha = group_scales(sd[f"{pre}.weight"].detach().cpu(), layer["cf"])
                per = alpha.repeat_interleave(layer["cf"]).numpy().astype(np.float32)
                per = per.reshape(-1, *([1] * (sd[f"{pre}.weight"].dim() - 1)))
                nodes.append(helper.make_node("BipolarQuant",
                                              [wkey, init(f"{name}_scale", per)],
                                              [f"{name}_wq"], name=f"{name}_weight_quant",
                                              domain=qdomain))
                wkey = f"{name}_wq"
                infos.append(helper.make_tensor_value_info(wkey, TensorProto.FLOAT,
                                                           list(sd[f"{pre}.weight"].shape)))
            inputs = [x, wkey] + ([init(f"{name}_bias", t(f"{pre}.bias"))]
                                  if layer["bias"] else [])
            if kind == "conv":
                k, s, p = layer["kernel"], layer["stride"], layer["padding"]
                if p and layer["precision"] != "float" and layer["pad_value"] == -1:
                    pads = np.array([0, 0, p, p, 0, 0, p, p], np.int64)
                    nodes.append(helper.make_node(
                        "Pad", [x, init(f"{name}_pads", pads),
                                init(f"{name}_pad_value", np.array(-1.0, np.float32))],
                        [f"{name}_padded"], name=f"{name}_pad", mode="constant"))
                    inputs[0] = f"{name}_padded"
                    cc, hh, ww = shapes[i]
                    info(inputs[0], (cc, hh + 2 * p, ww + 2 * p))
                    p = 0
                nodes.append(helper.make_node("Conv", inputs, [out], name=name,
                                              kernel_shape=[k, k], strides=[s, s],
                                              pads=[p] * 4, dilations=[1, 1], group=1))
            else:
                nodes.append(helper.make_node("Gemm", inputs, [out], name=name, transB=1))
        elif kind == "batchnorm":
            ch = shapes[i][0]
            if layer["affine"]:
                g, b = t(f"{pre}.weight"), t(f"{pre}.bias")
            else:
                g, b = np.ones(ch, np.float32), np.zeros(ch, np.float32)
            nodes.append(helper.make_node(
                "BatchNormalization",
                [x, init(f"{name}_scale", g), init(f"{name}_bias", b),
                 init(f"{name}_mean", t(f"{pre}.running_mean")),
                 init(f"{name}_var", t(f"{pre}.running_var"))],
                [out], name=name, epsilon=float(layer["eps"])))
            counts[name] = int(sd[f"{pre}.num_batches_tracked"])
        elif kind == "relu":
            nodes.append(helper.make_node("Relu", [x], [out], name=name))
        elif kind in ("maxpool", "avgpool"):
            k, s, p = layer["kernel"], layer["stride"], layer["padding"]
            extra = {"count_include_pad": 1} if kind == "avgpool" else {}
            nodes.append(helper.make_node("MaxPool" if kind == "maxpool" else "AveragePool",
                                          [x], [out], name=name, kernel_shape=[k, k],
                                          strides=[s, s], pads=[p] * 4, **extra))
        elif kind == "flatten":
            nodes.append(helper.make_node("Flatten", [x], [out], name=name, axis=1))
        else:
            raise QonnxError(f"layer {name}: {kind} cannot be exported")
        x = out
        if i != last:
            info(x, shapes[i + 1])
    graph = helper.make_graph(
        nodes, spec["name"],
        [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, c, h, w])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, *shapes[-1]])],
        initializer=inits, value_info=infos)
    model = helper.make_model(graph, producer_name="cfgen", ir_version=EXPORT_IR_VERSION,
                              opset_imports=[helper.make_opsetid("", EXPORT_OPSET),
                                             helper.make_opsetid(qdomain, 1)])
    model.doc_string = (f"cfgen model {spec['name']}: input is uint8 pixels / 255 (N, C, H, W); "
                        "binary layers: BipolarQuant (x >= 0 -> +1) with CF-n group scales")
    cf = {l["name"]: l["cf"] for l in spec["layers"]
          if l["type"] in ("conv", "linear") and l["precision"] != "float"}
    for key, value in ((META_FORMAT, FORMAT_TAG), (META_SPEC, json.dumps(spec)),
                       (META_CF, json.dumps(cf)), (META_BATCHES, json.dumps(counts))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model


def export_onnx(ckpt, path) -> None:
    """Write the checkpoint's model as a QONNX file, atomically."""
    import tempfile

    from .checkpoint import _make_parents, _remove_dirs

    model = export_model(ckpt)
    data = model.SerializeToString()
    path = Path(path)
    created, tmp, done = [], None, False
    try:
        created = _make_parents(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        done = True
    except OSError as exc:
        raise QonnxError(f"{_show(path)}: cannot write: "
                         f"{(exc.strerror or type(exc).__name__).lower()}") from None
    finally:
        if not done:
            if tmp is not None and os.path.lexists(tmp):
                os.unlink(tmp)
            _remove_dirs(created)


def check_onnx_output(path) -> Path:
    """Before any work: the .onnx file an export may write (absent, or an ONNX file)."""
    text = str(path)
    if not text or "\0" in text:
        raise QonnxError(f"{_show(text) or 'output path'}: not a valid file name")
    path = Path(path)
    if not is_onnx_path(path):
        raise QonnxError(f"{_show(path)}: the output must end in .onnx")
    if len(os.fsencode(path.name)) + 14 > 255:
        raise QonnxError(f"{_show(path)}: file name too long")
    if replaceable_file(path, "ONNX", QonnxError, _show(path)) is not None:
        with open(path, "rb") as f:
            head = f.read(64)
        if not head.startswith(b"\x08"):     # field 1 (ir_version), varint: an ONNX model
            raise QonnxError(f"{_show(path)}: exists and is not an ONNX file; refusing to "
                             "overwrite it")
    from .checkpoint import _make_parents, _remove_dirs
    import tempfile
    created = []
    try:
        created = _make_parents(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except NotADirectoryError:
        raise QonnxError(f"{_show(path)}: cannot write: a parent is a file, not a folder") \
            from None
    except OSError as exc:
        raise QonnxError(f"{_show(path)}: cannot write: {(exc.strerror or '').lower()}") from None
    finally:
        _remove_dirs(created)
    return path
