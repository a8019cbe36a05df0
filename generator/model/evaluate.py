"""Float-model evaluation: logits and top-1 accuracy on uint8 images.

The model's input is pixels/255 (model.pixels_to_input). Evaluation runs in eval mode
under no_grad in fixed-size batches, so a figure measured on the CPU is reproducible
bit for bit (train stores its final accuracy this way; `eval` recomputes it).
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.errors import DataError
from .network import pixels_to_input


def _device_of(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


@torch.no_grad()
def predict_float(model: torch.nn.Module, images_uint8, batch: int = 256) -> np.ndarray:
    """Logits (N, classes) as float32 numpy of the float model for uint8 images (N, C, H, W).

    Runs on the model's device; restores the model's train/eval mode afterwards.
    """
    images = torch.as_tensor(images_uint8)
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    device = _device_of(model)
    was_training = model.training
    model.eval()
    try:
        outs = []
        for i in range(0, len(images), batch):
            x = pixels_to_input(images[i:i + batch]).to(device)
            outs.append(model(x).float().cpu())
    finally:
        model.train(was_training)
    if not outs:
        return np.zeros((0, 0), np.float32)
    return torch.cat(outs).numpy()


def accuracy_of(logits: np.ndarray, labels) -> float:
    """Top-1 accuracy (first maximum wins ties)."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        raise DataError("no frames to evaluate")
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def float_accuracy(model: torch.nn.Module, images_uint8, labels, batch: int = 256) -> float:
    """Top-1 accuracy of the float model on uint8 images (N, C, H, W)."""
    return accuracy_of(predict_float(model, images_uint8, batch), labels)


def check_compatible(spec: dict, images, what: str) -> None:
    """Refuse (DataError) images whose (C, H, W) differ from the spec's input."""
    inp = spec["input"]
    want = (inp["channels"], inp["height"], inp["width"])
    got = tuple(images.shape[1:])
    if got != want:
        raise DataError(f"{what} images are {got[0]}x{got[1]}x{got[2]} (C x H x W) but model "
                        f"'{spec.get('name', '?')}' takes {want[0]}x{want[1]}x{want[2]}")
