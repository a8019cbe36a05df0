"""Build a PyTorch module from a resolved spec: one submodule per spec layer."""

from __future__ import annotations

import torch
import torch.nn as nn

from . import spec as specmod
from .quant import CFConv2d, CFLinear, ClampedBatchNorm


class CFNet(nn.Module):
    """layers[i] is spec['layers'][i]; forward takes pixels/255 as float (N, C, H, W)."""

    def __init__(self, spec: dict, center_clamp: bool = False):
        super().__init__()
        if not spec.get("resolved"):
            raise ValueError("CFNet needs a resolved spec (spec.resolve)")
        self.spec = spec
        shapes = specmod.shapes(spec)
        self.layers = nn.ModuleList(
            _make_layer(layer, shapes[i], center_clamp) for i, layer in enumerate(spec["layers"]))

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


def _make_layer(layer: dict, in_shape: tuple, center_clamp: bool) -> nn.Module:
    kind = layer["type"]
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
