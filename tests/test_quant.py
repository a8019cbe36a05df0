"""CF-n binarization (generator/model/quant.py) against the formulas of BRIEF section 1."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from generator.core.errors import SpecError
from generator.model.quant import (CFConv2d, CFLinear, ClampedBatchNorm, cf_binarize,
                             cf_scales_from_filterwise, check_cf, convert_to_cf, group_scales,
                             sign_ste)


def _weights(shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _group_error(wg: np.ndarray, a: float) -> float:
    """sum over the group's filters of ||W_o - a * sign(W_o)||^2 (sign(0) = +1)."""
    s = np.where(wg >= 0, 1.0, -1.0)
    return float(((wg - a * s) ** 2).sum())


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16])
def test_alpha_is_least_squares_optimum(n):
    w = _weights((16, 3, 3, 3), seed=n)
    alpha = group_scales(w, n).numpy()
    assert alpha.shape == (16 // n,)
    groups = w.numpy().reshape(16 // n, -1)
    for g, wg in enumerate(groups):
        # closed form: d/da sum (w - a s)^2 = 0  =>  a = <w, s> / N
        s = np.where(wg >= 0, 1.0, -1.0)
        assert alpha[g] == pytest.approx(float(wg @ s) / wg.size, rel=1e-12)
        # numerical minimizer
        best = minimize_scalar(lambda a: _group_error(wg, a), bounds=(0, 5), method="bounded",
                               options={"xatol": 1e-10})
        assert alpha[g] == pytest.approx(best.x, abs=1e-6)
        # brute force: no grid point does better
        grid = np.linspace(0.0, 2.0 * np.abs(wg).max(), 4001)
        errs = ((wg[None, :] - grid[:, None] * s[None, :]) ** 2).sum(axis=1)
        assert _group_error(wg, alpha[g]) <= errs.min() + 1e-12
        # and sharing the scale across the group beats none of the per-filter optima
        per_filter = wg.reshape(n, -1)
        assert _group_error(wg, alpha[g]) >= sum(
            _group_error(f, np.abs(f).mean()) for f in per_filter) - 1e-9


@settings(max_examples=20, deadline=None)
@given(log_n=st.integers(0, 3), groups=st.integers(1, 4), fan_in=st.integers(1, 12),
       seed=st.integers(0, 2**16))
def test_alpha_optimum_by_gradient_descent(log_n, groups, fan_in, seed):
    n = 2 ** log_n
    w = _weights((n * groups, fan_in), seed=seed)
    a = torch.full((groups,), 0.1, dtype=torch.float64, requires_grad=True)
    s = torch.where(w >= 0, 1.0, -1.0).to(torch.float64)
    # strong Wolfe line search: a plain first step can land on the mirror point of a
    # one-weight quadratic (equal loss) and stop there
    opt = torch.optim.LBFGS([a], max_iter=100, tolerance_grad=1e-14, tolerance_change=1e-16,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = ((w - a.repeat_interleave(n)[:, None] * s) ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert torch.allclose(a.detach(), group_scales(w, n), atol=1e-8)


def test_n1_is_xnor_net_per_filter_alpha():
    w = _weights((12, 5, 3, 3), seed=3)
    # XNOR-Net reference: m = W.norm(1, 3).sum(2).sum(1) / n_elements, W_b = sign(W) * m
    ref_alpha = w.norm(1, 3, keepdim=True).sum(2, keepdim=True).sum(1, keepdim=True) / w[0].numel()
    assert torch.allclose(group_scales(w, 1), ref_alpha.flatten())
    assert torch.allclose(cf_binarize(w, 1), w.sign() * ref_alpha)


def test_cf_binarize_values():
    w = _weights((8, 4), seed=4)
    out = cf_binarize(w, 4)
    alpha = w.abs().reshape(2, -1).mean(1)
    expect = torch.cat([alpha[0] * w[:4].sign(), alpha[1] * w[4:].sign()])
    assert torch.equal(out, expect)
    assert out.abs().reshape(2, -1).unique(dim=1).shape[1] == 1  # one magnitude per group


def test_sign_of_zero_is_plus_one():
    x = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 2.0, -2.0])
    assert sign_ste(x).tolist() == [1, 1, 1, -1, 1, -1]
    w = torch.zeros(4, 2)
    w[0, 0] = -1.0
    out = cf_binarize(w, 2)
    assert (out[0, 1] > 0) and (out[1] > 0).all()  # zeros binarize to +alpha
    # an XNOR layer binarizes a zero activation to +1
    conv = CFConv2d(1, 2, 1, mode="xnor", cf=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    assert conv(torch.zeros(1, 1, 2, 2)).eq(1.0).all()


def test_ste_gradient():
    x = torch.tensor([-3.0, -1.0, -0.999, -0.5, 0.0, 0.5, 1.0, 1.001, 3.0], requires_grad=True)
    g = torch.arange(1.0, 10.0)
    sign_ste(x).backward(g)
    assert torch.equal(x.grad, g * (x.detach().abs() <= 1).float())
    assert x.grad.tolist() == [0, 2, 3, 4, 5, 6, 7, 0, 0]


@pytest.mark.parametrize("n", [1, 2, 4])
def test_weight_gradient_of_cf_binarize(n):
    w = (_weights((8, 3, 2, 2), seed=10 + n) * 0.8).requires_grad_(True)
    g = _weights((8, 3, 2, 2), seed=20 + n)
    cf_binarize(w, n).backward(g)
    # explicit: d/dW [alpha_g(W) sign(W)] with the STE on sign:
    #   alpha_g * g * 1{|W| <= 1} + sign(W) * sum_group(g * sign(W)) / group_size
    wd = w.detach()
    s = torch.where(wd >= 0, 1.0, -1.0).to(wd.dtype)
    alpha = wd.abs().reshape(8 // n, -1).mean(1)
    a_full = alpha.repeat_interleave(n).reshape(8, 1, 1, 1)
    group_size = n * wd[0].numel()
    gs = (g * s).reshape(8 // n, -1).sum(1).repeat_interleave(n).reshape(8, 1, 1, 1)
    expect = a_full * g * (wd.abs() <= 1) + s * gs / group_size
    assert torch.allclose(w.grad, expect, atol=1e-12)
    assert (wd.abs() > 1).any(), "test must cover clipped weights"


@pytest.mark.parametrize("bad", [0, -2, 3, 5, 2.0, True, "2", None])
def test_bad_n_refused(bad):
    channels = 16 if bad in (3, 5) else 12
    with pytest.raises(SpecError, match=r"CF n"):
        check_cf(channels, bad)
    with pytest.raises(SpecError, match=r"CF n"):
        group_scales(torch.ones(channels, 2), bad)


def test_bad_n_message_names_the_channels():
    with pytest.raises(SpecError, match=r"n=3 does not divide the 16 output channels"):
        CFConv2d(4, 16, 3, mode="xnor", cf=3)
    with pytest.raises(SpecError, match=r"n=5 does not divide the 12 output channels"):
        CFLinear(4, 12, mode="bw", cf=5)
    with pytest.raises(SpecError, match=r"mode"):
        CFConv2d(4, 16, 3, mode="int8", cf=2)


@pytest.mark.parametrize("src_n,n", [(1, 2), (1, 4), (1, 8), (2, 4), (4, 2)])
def test_convert_to_cf(src_n, n):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), CFConv2d(16, 16, 3, cf=src_n),
                              CFLinear(16, 8, cf=src_n, mode="bw"))
    before = [m.weight.detach().clone() for m in net]
    alphas = [group_scales(m.weight.detach(), src_n).repeat_interleave(src_n) for m in net[1:]]
    convert_to_cf(net, n)
    assert torch.equal(net[0].weight, before[0])  # float layer untouched
    for m, w0, a0 in zip(net[1:], before[1:], alphas):
        assert m.cf == n
        expect_alpha = a0.reshape(-1, n).mean(1)  # mean of the filter-wise alphas
        assert torch.allclose(m.scales(), expect_alpha, atol=1e-7)
        assert torch.allclose(cf_scales_from_filterwise(a0, n), expect_alpha)
        assert torch.equal(m.weight >= 0, w0 >= 0)  # signs preserved (sign(0) = +1)
        # the CF-n binary weight is alpha_g * sign(W_o)
        assert torch.allclose(cf_binarize(m.weight.detach(), n),
                              expect_alpha.repeat_interleave(n).reshape(-1, *[1] * (w0.dim() - 1))
                              * torch.where(w0 >= 0, 1.0, -1.0), atol=1e-7)


def test_convert_to_cf_refuses_bad_n_before_changing_anything():
    conv = CFConv2d(4, 12, 1, cf=1)
    w0 = conv.weight.detach().clone()
    with pytest.raises(SpecError, match="does not divide"):
        convert_to_cf(conv, 5)
    assert torch.equal(conv.weight, w0) and conv.cf == 1


def _reference_center_clamp(w: np.ndarray) -> np.ndarray:
    """XNOR-Net reference BinOp: W - W.mean(1) (over input channels), then clamp(-1, 1)."""
    out = np.empty_like(w)
    for o in range(w.shape[0]):
        for idx in np.ndindex(*w.shape[2:]):
            col = w[(o, slice(None)) + idx]
            out[(o, slice(None)) + idx] = np.clip(col - col.mean(), -1.0, 1.0)
    return out


def test_center_clamp_matches_reference():
    torch.manual_seed(1)
    conv = CFConv2d(6, 4, 3, padding=1, cf=2, mode="xnor", center_clamp=True)
    with torch.no_grad():
        conv.weight.mul_(20).add_(0.3)  # off-center, many weights beyond +-1
    w0 = conv.weight.detach().double().numpy().copy()
    x = torch.randn(2, 6, 5, 5)
    conv.eval()
    y_eval = conv(x)
    assert np.array_equal(conv.weight.detach().double().numpy(), w0)  # eval: untouched
    conv.train()
    y = conv(x)
    w1 = conv.weight.detach().double().numpy()
    assert np.allclose(w1, _reference_center_clamp(w0), atol=1e-6)
    assert np.abs(w1).max() <= 1.0
    # the forward used the centered, clamped weights
    xb = F.pad(torch.where(x >= 0, 1.0, -1.0), (1,) * 4, value=-1.0)
    assert torch.allclose(y, F.conv2d(xb, cf_binarize(conv.weight.detach(), 2), conv.bias),
                          atol=1e-5)
    assert not torch.allclose(y, y_eval)
    # without the option the latent weights stay as they are
    plain = CFConv2d(6, 4, 3, cf=2)
    w2 = plain.weight.detach().clone()
    plain.train()(x)
    assert torch.equal(plain.weight, w2)


def test_center_clamp_linear():
    lin = CFLinear(5, 4, cf=2, center_clamp=True)
    with torch.no_grad():
        lin.weight.mul_(10).add_(2)
    w0 = lin.weight.detach().double().numpy().copy()
    lin.train()(torch.randn(3, 5))
    expect = np.clip(w0 - w0.mean(axis=1, keepdims=True), -1, 1)
    assert np.allclose(lin.weight.detach().numpy(), expect, atol=1e-6)


def test_padding_value_of_binary_convolutions():
    torch.manual_seed(2)
    x = torch.randn(1, 3, 4, 4)
    xnor = CFConv2d(3, 4, 3, padding=1, mode="xnor", cf=2, pad_value=-1)
    xb = torch.where(x >= 0, 1.0, -1.0)
    wb = cf_binarize(xnor.weight.detach(), 2)
    expect = F.conv2d(F.pad(xb, (1,) * 4, value=-1.0), wb, xnor.bias)
    assert torch.allclose(xnor.eval()(x), expect, atol=1e-6)
    bw = CFConv2d(3, 4, 3, padding=1, mode="bw", cf=2, pad_value=0)
    expect = F.conv2d(x, cf_binarize(bw.weight.detach(), 2), bw.bias, padding=1)
    assert torch.allclose(bw.eval()(x), expect, atol=1e-6)


def test_clamped_batchnorm_gamma():
    bn = ClampedBatchNorm(3, eps=1e-4, momentum=0.1, affine=True, min_gamma=0.01)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([-1.0, 0.005, 2.0]))
    bn.eval()(torch.randn(4, 3))
    assert bn.weight.tolist() == pytest.approx([-1.0, 0.005, 2.0])  # eval: untouched
    bn.train()(torch.randn(4, 3, 2, 2))
    assert bn.weight.tolist() == pytest.approx([0.01, 0.01, 2.0])
