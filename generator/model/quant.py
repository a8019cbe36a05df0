"""Cross-filter (CF-n) binarization for PyTorch.

CF-n: n consecutive output filters share one scale alpha_g = mean|W| over the
group, the least-squares optimum of sum_o ||W_o - alpha_g sign(W_o)||^2.
n = 1 is BWN / XNOR-Net. Activations (XNOR mode) and weights binarize with
sign(0) = +1 and the straight-through estimator grad * 1{|x| <= 1}.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.errors import SpecError


class SignSTE(torch.autograd.Function):
    """sign with +1 at 0; backward passes grad where |x| <= 1."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    return SignSTE.apply(x)


def check_cf(out_channels: int, n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SpecError(f"CF n must be a positive integer, got {n!r}")
    if out_channels % n:
        raise SpecError(f"CF n={n} does not divide the {out_channels} output channels")


def group_scales(weight: torch.Tensor, n: int) -> torch.Tensor:
    """alpha_g = mean |W| over the n filters of group g; shape (out // n,)."""
    check_cf(weight.shape[0], n)
    return weight.abs().reshape(weight.shape[0] // n, -1).mean(dim=1)


def expand_groups(alpha: torch.Tensor, n: int, like: torch.Tensor) -> torch.Tensor:
    """Broadcast per-group scales to a per-filter tensor shaped for `like`."""
    per_filter = alpha.repeat_interleave(n)
    return per_filter.reshape(-1, *([1] * (like.dim() - 1)))


def cf_binarize(weight: torch.Tensor, n: int) -> torch.Tensor:
    """alpha_g * sign(W), differentiable (STE on sign, exact gradient of alpha)."""
    alpha = group_scales(weight, n)
    return expand_groups(alpha, n, weight) * sign_ste(weight)


def cf_scales_from_filterwise(alphas: torch.Tensor, n: int) -> torch.Tensor:
    """Group scales from per-filter ones (equal-size filters): the mean of the n alphas."""
    check_cf(alphas.shape[0], n)
    return alphas.reshape(-1, n).mean(dim=1)


class _CFMixin:
    """Shared state of CF layers: mode ('xnor' | 'bw'), n, and the reference's weight handling."""

    mode: str
    cf: int
    weight: torch.Tensor

    def _init_cf(self, mode: str, cf: int, dropout: float, center_clamp: bool) -> None:
        if mode not in ("xnor", "bw"):
            raise SpecError(f"CF layer mode must be 'xnor' or 'bw', got {mode!r}")
        check_cf(self.weight.shape[0], cf)
        self.mode, self.cf, self.center_clamp = mode, cf, center_clamp
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @torch.no_grad()
    def center_clamp_(self) -> None:
        """XNOR-Net reference (BinOp.meancenterConvParams + clampConvParams): subtract the
        mean over the input-channel axis (dim 1, per output filter and kernel tap) from the
        latent weights, then clamp them to [-1, 1]. In place."""
        self.weight.sub_(self.weight.mean(dim=1, keepdim=True)).clamp_(-1.0, 1.0)

    def binary_weight(self) -> torch.Tensor:
        if self.center_clamp and self.training:
            # The reference centers and clamps before every binarization while training.
            self.center_clamp_()
        return cf_binarize(self.weight, self.cf)

    def scales(self) -> torch.Tensor:
        return group_scales(self.weight.detach(), self.cf)

    def binary_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "xnor":
            x = sign_ste(x)
        return self.drop(x)


class CFConv2d(_CFMixin, nn.Conv2d):
    """Conv with CF-n binary weights; XNOR mode also binarizes its input.

    pad_value -1 pads the binarized input with -1 (one bit in hardware); 0 is
    PyTorch's zero padding.
    """

    def __init__(self, in_ch, out_ch, kernel, stride=1, padding=0, bias=True, *,
                 mode="xnor", cf=1, dropout=0.0, pad_value=-1, center_clamp=False):
        nn.Conv2d.__init__(self, in_ch, out_ch, kernel, stride=stride, padding=0, bias=bias)
        self.pad, self.pad_value = padding, pad_value
        self._init_cf(mode, cf, dropout, center_clamp)

    def forward(self, x):
        x = self.binary_input(x)
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, value=float(self.pad_value))
        return F.conv2d(x, self.binary_weight(), self.bias, self.stride)


class CFLinear(_CFMixin, nn.Linear):
    def __init__(self, in_f, out_f, bias=True, *, mode="xnor", cf=1, dropout=0.0,
                 center_clamp=False):
        nn.Linear.__init__(self, in_f, out_f, bias=bias)
        self._init_cf(mode, cf, dropout, center_clamp)

    def forward(self, x):
        return F.linear(self.binary_input(x), self.binary_weight(), self.bias)


class ClampedBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm (1d or 2d) whose affine gamma is clamped to >= min_gamma while training."""

    def __init__(self, num_features, *, eps, momentum, affine, min_gamma=None):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine)
        self.min_gamma = min_gamma

    def _check_input_dim(self, x):
        if x.dim() not in (2, 4):
            raise ValueError(f"expected 2D or 4D input, got {x.dim()}D")

    def forward(self, x):
        if self.affine and self.min_gamma is not None and self.training:
            with torch.no_grad():
                self.weight.clamp_(min=self.min_gamma)
        return super().forward(x)


def convert_to_cf(model: nn.Module, n: int) -> nn.Module:
    """Re-group a filter-wise (n = 1) model into CF-n in place, without float weights.

    Each filter is replaced by alpha_g * sign(W_o) with alpha_g the mean of the group's
    filter-wise alphas; that is exactly the CF-n binary model and its latent weights
    for fine-tuning.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _CFMixin):
                w = module.weight
                check_cf(w.shape[0], n)
                alphas = group_scales(w, module.cf).repeat_interleave(module.cf)
                alpha_g = cf_scales_from_filterwise(alphas, n)
                w.copy_(expand_groups(alpha_g, n, w) * torch.where(w >= 0, 1.0, -1.0))
                module.cf = n
    return model
