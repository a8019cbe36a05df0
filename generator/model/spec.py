"""Declarative architecture specs: parse, validate, resolve, and propagate shapes.

A spec is a JSON object (see docs/SPEC.md) listing layers in order. The zoo holds
named specs; any file with the same schema works wherever a zoo name does.
"""

from __future__ import annotations

import copy
from pathlib import Path

from ..core.errors import SpecError
from ..core.jsonfile import read_json
from ..core.names import check_name, name_from

ZOO_DIR = Path(__file__).parent / "zoo"
PRECISIONS = ("float", "bw", "xnor")
BINARY = ("bw", "xnor")


def out_dim(size: int, k: int, stride: int, pad: int) -> int:
    """Output rows (or columns) of a k x k window with this stride and padding."""
    return (size + 2 * pad - k) // stride + 1


# Allowed keys per layer type, with defaults; "name" is allowed everywhere.
LAYER_FIELDS: dict[str, dict] = {
    "conv": {"out": None, "kernel": None, "stride": 1, "padding": 0, "precision": "float",
             "cf": None, "bias": True, "dropout": 0.0, "pad_value": None},
    "linear": {"out": None, "precision": "float", "cf": None, "bias": True, "dropout": 0.0},
    "batchnorm": {"affine": True, "eps": 1e-5, "momentum": 0.1, "min_gamma": None},
    "relu": {},
    "maxpool": {"kernel": None, "stride": None, "padding": 0},
    "avgpool": {"kernel": None, "stride": None, "padding": 0},
    "dropout": {"p": 0.5},
    "flatten": {},
    "residual": {"body": None, "shortcut": [], "relu": False},
}
# What a residual block's body and shortcut may hold (no flatten, linear or nested block).
BLOCK_TYPES = ("conv", "batchnorm", "relu", "dropout", "maxpool", "avgpool")
# The parts of a residual block, in execution order.
BLOCK_PARTS = ("body", "shortcut")


def walk(spec: dict):
    """Every layer dict of the spec, nested ones included, depth-first in execution order:
    a residual layer, then its body, then its shortcut."""
    for _key, layer in walk_keys(spec):
        yield layer


def walk_keys(spec: dict):
    """(module path, layer) for every layer, as walk(): the path is the CFNet module name
    and state-dict prefix, e.g. 'layers.3' or 'layers.3.body.1' or 'layers.3.shortcut.0'."""
    for i, layer in enumerate(spec["layers"]):
        key = f"layers.{i}"
        yield key, layer
        if layer.get("type") == "residual":
            for part in BLOCK_PARTS:
                for j, inner in enumerate(layer.get(part) or []):
                    yield f"{key}.{part}.{j}", inner


def in_shortcut(key: str) -> bool:
    """Whether a walk_keys path lies in a residual block's shortcut."""
    return ".shortcut." in key


def has_residual(spec: dict) -> dict | None:
    """The first residual layer of the spec, or None."""
    return next((l for l in spec["layers"] if l.get("type") == "residual"), None)


def zoo_names() -> list[str]:
    return sorted(p.stem for p in ZOO_DIR.glob("*.json"))


def load_spec(arch: str) -> dict:
    """Load a zoo name or a spec file path and return the validated (unresolved) spec."""
    import os
    import stat

    from ..core.escape import one_line

    path = Path(arch)
    if arch in zoo_names():
        path = ZOO_DIR / f"{arch}.json"
    else:
        try:
            regular = stat.S_ISREG(os.stat(path).st_mode)
        except (OSError, ValueError):  # missing, name too long, NUL byte, ...
            regular = False
        if not regular:
            raise SpecError(f"unknown architecture '{one_line(arch, 80)}': not a zoo name "
                            f"({', '.join(zoo_names())}) nor an existing spec file")
    spec = read_json(path, "spec", SpecError, MAX_SPEC_BYTES)
    return validate(spec, source=str(path))


MAX_SPEC_BYTES = 1 << 24  # a spec is a few kB; 16 MiB bounds what is read


TOP_FIELDS = ("name", "description", "input", "num_classes", "layers", "resolved")
INPUT_FIELDS = ("channels", "height", "width")


def _number(value, what: str, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{what} must be a number, got {value!r}")
    v = float(value)
    if v != v or (low is not None and (v < low or (low_open and v == low))) or \
            (high is not None and (v > high or (high_open and v == high))):
        lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
        raise SpecError(f"{what} must be in {lo or '(-inf'}, {hi or 'inf)'}, got {value!r}")
    return v


def _bool(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"{what} must be true or false, got {value!r}")
    return value


def _positive_int(value, what: str, minimum: int = 1, maximum: int = 1 << 16) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{what} must be an integer >= {minimum}, got {value!r:.40}")
    if value > maximum:
        raise SpecError(f"{what} must be an integer <= {maximum}, got {value!r}")
    return value


# Size budget, checked before any tensor is allocated: the largest zoo model (the paper's
# AlexNet) has about 61 M parameters and 0.3 M activations per layer output.
MAX_DESCRIPTION = 1000
MAX_LAYERS = 1000
MAX_PARAMETERS = 1 << 28          # 268 M weights: 1 GiB of float32
MAX_ACTIVATIONS = 1 << 25         # 33.5 M values in one layer's output, per image


def check_budget(spec: dict) -> None:
    """Refuse models whose tensors would not fit a workstation, with the numbers.
    Every layer counts, nested ones included."""
    params = 0
    io = layer_shapes(spec)
    for layer in walk(spec):
        before = io[layer["name"]][0]
        if layer["type"] == "conv":
            params += layer["out"] * before[0] * layer["kernel"] ** 2
        elif layer["type"] == "linear":
            params += layer["out"] * before[0]
    if params > MAX_PARAMETERS:
        raise SpecError(f"the model has {params:,} weights, more than the {MAX_PARAMETERS:,} "
                        "cfgen accepts")
    inp = spec["input"]
    sized = [(None, (inp["channels"], inp["height"], inp["width"]))]
    sized += [(layer, io[layer["name"]][1]) for layer in walk(spec)]
    for layer, shape in sized:
        size = _prod(shape)
        if size > MAX_ACTIVATIONS:
            where = "the input" if layer is None else f"layer {layer['name']}"
            raise SpecError(f"{where} holds {size:,} values per image "
                            f"({'x'.join(map(str, shape))}), more than the {MAX_ACTIVATIONS:,} "
                            "cfgen accepts")


MAX_DEPTH = 32


def _check_depth(obj, source: str) -> None:
    """Refuse nesting deeper than any spec needs (iteratively: no RecursionError)."""
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SpecError(f"{source}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1) for v in item)


def validate(spec: dict, source: str = "spec") -> dict:
    """Check the schema and shapes; fill defaults and layer names. Returns a new dict."""
    if not isinstance(spec, dict):
        raise SpecError(f"{source}: a spec must be a JSON object")
    _check_depth(spec, source)
    spec = copy.deepcopy(spec)
    unknown = set(spec) - set(TOP_FIELDS)
    if unknown:
        raise SpecError(f"{source}: unknown field(s) {', '.join(sorted(map(str, unknown)))} "
                        f"(allowed: {', '.join(TOP_FIELDS)})")
    for key in ("input", "layers"):
        if key not in spec:
            raise SpecError(f"{source}: missing '{key}'")
    inp = spec["input"]
    if not isinstance(inp, dict):
        raise SpecError(f"{source}: 'input' must be an object")
    unknown = set(inp) - set(INPUT_FIELDS)
    if unknown:
        raise SpecError(f"{source}: input: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    for key in INPUT_FIELDS:
        _positive_int(inp.get(key), f"{source}: input.{key}")
    spec.setdefault("name", name_from(Path(source).stem))
    check_name(spec["name"], f"{source}: model name", SpecError)
    if "description" in spec and (not isinstance(spec["description"], str)
                                  or len(spec["description"]) > MAX_DESCRIPTION):
        raise SpecError(f"{source}: 'description' must be a string of at most "
                        f"{MAX_DESCRIPTION} characters")
    if "num_classes" in spec:
        _positive_int(spec["num_classes"], f"{source}: num_classes")
    if not isinstance(spec["layers"], list) or not spec["layers"]:
        raise SpecError(f"{source}: 'layers' must be a non-empty list")
    if len(spec["layers"]) > MAX_LAYERS:
        raise SpecError(f"{source}: {len(spec['layers'])} layers, more than the {MAX_LAYERS} "
                        "cfgen accepts")
    names: set = set()
    count = [len(spec["layers"])]
    spec["layers"] = [_check_layer(raw, f"{source}: layer {i}", "", i, names, count,
                                   tuple(LAYER_FIELDS))
                      for i, raw in enumerate(spec["layers"])]
    try:
        out_shapes = shapes(spec)  # raises on impossible shapes
        check_budget(spec)
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}") from None
    if "num_classes" in spec and out_shapes[-1] != (spec["num_classes"],):
        raise SpecError(f"{source}: output shape {out_shapes[-1]} does not match "
                        f"num_classes {spec['num_classes']}")
    return spec


def _check_layer(raw, where: str, prefix: str, index: int, names: set, count: list,
                 allowed: tuple) -> dict:
    """One layer checked, defaults and name filled (default: prefix + type + index; a
    residual block with its body and shortcut); names collects every name of the spec,
    count[0] the number of layers, nested ones included."""
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str) or \
            raw["type"] not in LAYER_FIELDS:
        raise SpecError(f"{where}: 'type' must be one of {', '.join(allowed)}")
    kind = raw["type"]
    if kind not in allowed:
        raise SpecError(f"{where}: a residual block holds only {', '.join(allowed)} layers, "
                        f"not {kind}")
    fields = LAYER_FIELDS[kind]
    unknown = set(raw) - set(fields) - {"type", "name"}
    if unknown:
        raise SpecError(f"{where} ({kind}): unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    layer = {"type": kind, **copy.deepcopy(fields), **raw}
    name = layer.get("name") or f"{prefix}{kind}{index}"
    check_name(name, f"{where}: layer name", SpecError, ident=True)
    if name in names:
        raise SpecError(f"{where}: duplicate layer name {name!r}")
    names.add(name)
    layer["name"] = name
    if kind in ("conv", "linear"):
        _positive_int(layer["out"], f"{where}: out")
        if layer["precision"] not in PRECISIONS:
            raise SpecError(f"{where}: precision must be one of {', '.join(PRECISIONS)}")
        if layer["cf"] is not None:
            _positive_int(layer["cf"], f"{where}: cf")
            if layer["out"] % layer["cf"]:
                raise SpecError(f"{where}: cf {layer['cf']} does not divide its "
                                f"{layer['out']} output channels")
        _number(layer["dropout"], f"{where}: dropout", 0.0, 1.0, high_open=True)
        _bool(layer["bias"], f"{where}: bias")
    if kind == "conv":
        _positive_int(layer["kernel"], f"{where}: kernel")
        _positive_int(layer["stride"], f"{where}: stride")
        _positive_int(layer["padding"], f"{where}: padding", minimum=0)
        if layer["pad_value"] is None:
            layer["pad_value"] = -1 if layer["precision"] == "xnor" else 0
        if isinstance(layer["pad_value"], bool) or layer["pad_value"] not in (0, -1):
            raise SpecError(f"{where}: pad_value must be 0 or -1")
    if kind in ("maxpool", "avgpool"):
        _positive_int(layer["kernel"], f"{where}: kernel")
        if layer["stride"] is None:
            layer["stride"] = layer["kernel"]
        _positive_int(layer["stride"], f"{where}: stride")
        _positive_int(layer["padding"], f"{where}: padding", minimum=0)
        if 2 * layer["padding"] > layer["kernel"]:
            raise SpecError(f"{where}: padding must be at most half the kernel")
    if kind == "batchnorm":
        _number(layer["eps"], f"{where}: eps", 0.0, low_open=True)
        _number(layer["momentum"], f"{where}: momentum", 0.0, 1.0)
        _bool(layer["affine"], f"{where}: affine")
        if layer["min_gamma"] is not None:
            _number(layer["min_gamma"], f"{where}: min_gamma")
            if not layer["affine"]:
                raise SpecError(f"{where}: min_gamma needs affine true")
    if kind == "dropout":
        _number(layer["p"], f"{where}: p", 0.0, 1.0, high_open=True)
    if kind == "residual":
        _bool(layer["relu"], f"{where} ({name}): relu")
        for part in BLOCK_PARTS:
            inner = layer[part]
            if not isinstance(inner, list) or (part == "body" and not inner):
                raise SpecError(f"{where} ({name}): '{part}' must be a "
                                f"{'non-empty ' if part == 'body' else ''}list of layers")
            count[0] += len(inner)
            if count[0] > MAX_LAYERS:
                raise SpecError(f"{where} ({name}): more than the {MAX_LAYERS} layers cfgen "
                                "accepts (nested ones included)")
            inner_prefix = f"{name}_" if part == "body" else f"{name}_sc_"
            layer[part] = [_check_layer(r, f"{where}.{part}.{j}", inner_prefix, j, names, count,
                                        BLOCK_TYPES)
                           for j, r in enumerate(inner)]
    return layer


def shapes(spec: dict) -> list[tuple]:
    """Shapes (C, H, W) or (F,) after the input and after every top-level layer (a
    residual block counts as one layer: its output)."""
    inp = spec["input"]
    shape: tuple = (inp["channels"], inp["height"], inp["width"])
    return [shape] + [io[1] for io in _propagate(spec["layers"], shape, "layer ", {})]


def layer_shapes(spec: dict) -> dict:
    """{layer name: (input shape, output shape)} for every layer, nested ones included."""
    inp = spec["input"]
    table: dict = {}
    _propagate(spec["layers"], (inp["channels"], inp["height"], inp["width"]), "layer ", table)
    return table


def _propagate(layers: list, shape: tuple, where: str, table: dict) -> list[tuple]:
    """(input, output) shape of each layer in `layers`, recording every layer in table."""
    out = []
    for i, layer in enumerate(layers):
        kind = layer["type"]
        at = f"{where}{i} ({layer.get('name', kind)})"
        before = shape
        if kind == "conv" or kind in ("maxpool", "avgpool"):
            if len(shape) != 3:
                raise SpecError(f"{at}: needs a (C, H, W) input, got {shape}")
            c, h, w = shape
            k, s, p = layer["kernel"], layer["stride"], layer["padding"]
            oh, ow = out_dim(h, k, s, p), out_dim(w, k, s, p)
            if oh < 1 or ow < 1:
                raise SpecError(f"{at}: kernel {k} does not fit the {h}x{w} input")
            shape = (layer["out"] if kind == "conv" else c, oh, ow)
        elif kind == "linear":
            if len(shape) != 1:
                raise SpecError(f"{at}: linear needs a flat input; add a flatten layer")
            shape = (layer["out"],)
        elif kind == "flatten":
            shape = (int(_prod(shape)),)
        elif kind == "residual":
            if len(shape) != 3:
                raise SpecError(f"{at}: a residual block needs a (C, H, W) input, got {shape}")
            ends = {}
            for part in BLOCK_PARTS:
                inner = _propagate(layer[part], shape, f"{where}{i}.{part}.", table)
                ends[part] = inner[-1][1] if inner else shape
            if ends["body"] != ends["shortcut"]:
                kind_sc = "shortcut" if layer["shortcut"] else "identity shortcut"
                raise SpecError(f"{at}: body output {_dims(ends['body'])} and {kind_sc} "
                                f"output {_dims(ends['shortcut'])} differ; they must match "
                                "to be added")
            shape = ends["body"]
        table[layer.get("name", f"{kind}{i}")] = (before, shape)
        out.append((before, shape))
    return out


def _dims(shape: tuple) -> str:
    return "x".join(map(str, shape))


def _prod(xs) -> int:
    n = 1
    for x in xs:
        n *= x
    return n


def resolve(spec: dict, cf: int, mode: str | None = None) -> dict:
    """Fix precision and CF n of every binary layer: the form stored in checkpoints.

    mode ('xnor' | 'bw') overrides the precision of every non-float conv/linear, residual
    bodies included (shortcut layers keep the precision written); cf fills every binary
    layer, nested ones included, that does not set its own n. n must divide out.
    """
    if mode is not None and mode not in BINARY:
        raise SpecError(f"mode must be 'xnor' or 'bw', got {mode!r}")
    _positive_int(cf, "cf")
    spec = validate(spec, source=spec.get("name", "spec"))
    for key, layer in walk_keys(spec):
        if layer["type"] not in ("conv", "linear"):
            continue
        if layer["precision"] == "float":
            layer["cf"] = None
            continue
        if mode is not None and not in_shortcut(key):
            layer["precision"] = mode
            if layer["type"] == "conv":
                layer["pad_value"] = -1 if mode == "xnor" else 0
        n = layer["cf"] or cf
        if layer["out"] % n:
            raise SpecError(f"layer {layer['name']}: CF n={n} does not divide its "
                            f"{layer['out']} output channels")
        layer["cf"] = n
    spec["resolved"] = True
    return spec
