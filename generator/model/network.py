"""Build a PyTorch module from a resolved spec: one submodule per spec layer.

A residual layer becomes a ResidualBlock whose `body` and `shortcut` are ModuleLists
(state-dict keys `layers.<i>.body.<j>.<param>`, `layers.<i>.shortcut.<j>.<param>`).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import spec as specmod
from .quant import CFConv2d, CFLinear, ClampedBatchNorm


class CFNet(nn.Module):
    """layers[i] is spec['layers'][i]; forward takes pixels/255 as float (N, C, H, W).

    A residual layer i is layers[i], a ResidualBlock; its nested layer j of the body is
    layers[i].body[j] (spec.walk_keys gives every module path)."""

    def __init__(self, spec: dict, center_clamp: bool = False):
        super().__init__()
        if not spec.get("resolved"):
            raise ValueError("CFNet needs a resolved spec (spec.resolve)")
        self.spec = spec
        io = specmod.layer_shapes(spec)
        self.layers = nn.ModuleList(
            _make_layer(layer, io, center_clamp) for layer in spec["layers"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def trace(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of every layer, in order (for layer-wise comparison with hardware)."""
        outs = []
        for layer in self.layers:
            x = layer(x)
            outs.append(x)
        return outs

    def trace_all(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{layer name: output} for every layer, nested ones included (a residual layer's
        entry is the block's output, after the add and its ReLU)."""
        outs: dict[str, torch.Tensor] = {}
        for layer, module in zip(self.spec["layers"], self.layers):
            if isinstance(module, ResidualBlock):
                x = module(x, outs, layer)
            else:
                x = module(x)
            outs[layer["name"]] = x
        return outs

    def named_layers(self):
        """(module path, layer dict, module) for every layer, nested ones included, in
        spec.walk_keys order."""
        modules = dict(self.named_modules())
        for key, layer in specmod.walk_keys(self.spec):
            yield key, layer, modules[key]


class ResidualBlock(nn.Module):
    """body(x) + shortcut(x) (identity when the shortcut is empty), then ReLU if `relu`."""

    def __init__(self, body: list[nn.Module], shortcut: list[nn.Module], relu: bool):
        super().__init__()
        self.body = nn.ModuleList(body)
        self.shortcut = nn.ModuleList(shortcut)
        self.relu = bool(relu)

    def forward(self, x: torch.Tensor, trace: dict | None = None,
                spec: dict | None = None) -> torch.Tensor:
        y, s = x, x
        for j, m in enumerate(self.body):
            y = m(y)
            if trace is not None:
                trace[spec["body"][j]["name"]] = y
        for j, m in enumerate(self.shortcut):
            s = m(s)
            if trace is not None:
                trace[spec["shortcut"][j]["name"]] = s
        out = y + s
        return torch.relu(out) if self.relu else out


def _make_layer(layer: dict, io: dict, center_clamp: bool) -> nn.Module:
    """The module of one layer; io is spec.layer_shapes (input shape per layer name)."""
    kind = layer["type"]
    in_shape = io[layer["name"]][0]
    if kind == "residual":
        return ResidualBlock([_make_layer(l, io, center_clamp) for l in layer["body"]],
                             [_make_layer(l, io, center_clamp) for l in layer["shortcut"]],
                             layer["relu"])
    if kind == "conv":
        cin = in_shape[0]
        if layer["precision"] == "float":
            return nn.Conv2d(cin, layer["out"], layer["kernel"], layer["stride"],
                             layer["padding"], bias=layer["bias"])
        return CFConv2d(cin, layer["out"], layer["kernel"], layer["stride"], layer["padding"],
                        layer["bias"], mode=layer["precision"], cf=layer["cf"],
                        dropout=layer["dropout"], pad_value=layer["pad_value"],
                        center_clamp=center_clamp)
    if kind == "linear":
        if layer["precision"] == "float":
            return nn.Linear(in_shape[0], layer["out"], bias=layer["bias"])
        return CFLinear(in_shape[0], layer["out"], layer["bias"], mode=layer["precision"],
                        cf=layer["cf"], dropout=layer["dropout"], center_clamp=center_clamp)
    if kind == "batchnorm":
        return ClampedBatchNorm(in_shape[0], eps=layer["eps"], momentum=layer["momentum"],
                                affine=layer["affine"], min_gamma=layer["min_gamma"])
    if kind == "relu":
        return nn.ReLU()
    if kind == "maxpool":
        return nn.MaxPool2d(layer["kernel"], layer["stride"], layer["padding"])
    if kind == "avgpool":
        return nn.AvgPool2d(layer["kernel"], layer["stride"], layer["padding"])
    if kind == "dropout":
        return nn.Dropout(layer["p"])
    if kind == "flatten":
        return nn.Flatten()
    raise ValueError(f"unknown layer type {kind}")


def pixels_to_input(pixels) -> torch.Tensor:
    """uint8 pixels (N, C, H, W) -> the model's float input: pixels / 255.

    Zero padding of this input is pixel 0, so the first layer's padding is exact on
    uint8 hardware.
    """
    t = torch.as_tensor(pixels)
    if t.dtype != torch.uint8:
        raise ValueError(f"pixels must be uint8, got {t.dtype}")
    return t.to(torch.float32) / 255.0


@torch.no_grad()
def calibrate_batchnorm(model: CFNet, batches) -> None:
    """Set BN running statistics to the exact mean/var over the given input batches."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    model.train()
    for x in batches:
        model(x)
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()
