"""The Triton kernels of wildcat_pool (the GPU path) against the torch path.

Triton's interpreter must be chosen before Triton is imported, so the kernel tests run in a
child process with TRITON_INTERPRET=1, on small CPU tensors (a few seconds); on a GPU
wildcat_pool itself takes the kernels and is compared with the CPU. Skipped without Triton.
"""

from __future__ import annotations

import importlib

import pytest
import torch

from negev.nn.functional import _wildcat_triton, wildcat_pool
from negev.nn.functional._checks import count_valid, resolve_count
from tests.interpreter import INTERPRETED, in_interpreter, run_in_interpreter

wildcat = importlib.import_module("negev.nn.functional.wildcat")

pytest.importorskip("triton")


def test_interpreted_kernels():
    """Run this file's kernel tests in a child process under Triton's interpreter."""
    run_in_interpreter(__file__)


@pytest.fixture(params=[256, 8], ids=["sort_or_select", "select_from_16"])
def sort_up_to(request, monkeypatch):
    """The longest block sorted in registers: as shipped (longer rows select), or 8, so that every
    row of more than 8 regions takes the bitwise selection of the ends."""
    monkeypatch.setattr(_wildcat_triton, "SORT_UP_TO", request.param)
    return request.param


def run_kernels(scores, kmax, kmin, alpha, mask=None, grad=None):
    """wildcat_pool's GPU dispatch, the kernels on the CPU tensors: (out, d out / d scores)."""
    scores = scores.detach().clone().requires_grad_(True)
    flat = scores.flatten(2)
    n = flat.shape[2]
    use_low = kmin != 0 and alpha != 0
    if mask is None:
        high = max(1, round(kmax * n)) if kmax < 1 else min(int(kmax), n)
        low = (max(1, round(kmin * n)) if kmin < 1 else min(int(kmin), n)) if use_low else 0
        out = _wildcat_triton.pool(flat, None, None, None, high, low, alpha)
    else:
        valid = count_valid(mask.flatten(1), flat.shape[0], n, flat.device)
        k_high = resolve_count(kmax, valid)
        k_low = resolve_count(kmin, valid) if use_low else k_high
        out = _wildcat_triton.pool(
            flat,
            mask.flatten(1),
            k_high,
            k_low,
            int(k_high.max()),
            int(k_low.max()) if use_low else 0,
            alpha,
        )
    out.backward(torch.ones_like(out) if grad is None else grad)
    return out.detach(), scores.grad


def run_torch(scores, kmax, kmin, alpha, mask=None, grad=None):
    scores = scores.detach().clone().requires_grad_(True)
    out = wildcat_pool(scores, kmax, kmin, alpha, mask=mask)
    out.backward(torch.ones_like(out) if grad is None else grad)
    return out.detach(), scores.grad


@in_interpreter
@pytest.mark.parametrize(
    ("shape", "kmax", "kmin", "alpha"),
    [
        ((2, 3, 10), 3, 2, 0.7),  # sorted path
        ((2, 3, 4, 5), 0.2, 0.1, -0.5),  # fractional k, 2-D regions
        ((2, 2, 7), 1, 1, 1.0),  # max + min by reductions
        ((2, 2, 9), 2, 1, 0.5),  # two rounds of reductions
        ((1, 2, 5), 4, 4, 0.5),  # both ends overlap: kmax + kmin > N
        ((2, 2, 6), 2, 0, 1.0),  # no low term
        ((2, 1, 8), 3, 3, 0.0),  # alpha 0: no low term
        ((1, 1, 1), 1, 1, 1.0),  # one region, in both ends
        ((2, 2, 40), 30, 25, 0.3),  # overlapping, sorted, padded block
        ((2, 3, 300), 0.2, 0.05, 0.7),  # a long row: the thresholds' search
        ((1, 2, 300), 200, 150, 0.4),  # a long row, overlapping ends
        ((1, 1, 257), 3, 0, 1.0),  # one past the sorted block, no low term
    ],
)
def test_kernels_equal_the_torch_path(shape, kmax, kmin, alpha, sort_up_to):
    torch.manual_seed(0)
    scores = torch.randn(shape)
    grad = torch.randn(shape[:2])
    out, grad_in = run_kernels(scores, kmax, kmin, alpha, grad=grad)
    expected, expected_grad = run_torch(scores, kmax, kmin, alpha, grad=grad)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(grad_in, expected_grad)


@in_interpreter
@pytest.mark.parametrize(("kmax", "kmin", "alpha"), [(0.3, 0.2, 0.7), (1, 1, 1.0), (0.5, 0, 1.0)])
def test_kernels_with_a_mask(kmax, kmin, alpha, sort_up_to):
    torch.manual_seed(1)
    scores = torch.randn(3, 2, 12)
    mask = torch.rand(3, 12) < 0.6
    mask[:, 0] = True
    mask[2] = False
    mask[2, 5] = True  # one valid region
    scores[~mask.unsqueeze(1).expand_as(scores)] = float("nan")  # never read
    clean = scores.nan_to_num(0.0)
    out, grad_in = run_kernels(scores, kmax, kmin, alpha, mask=mask)
    expected, expected_grad = run_torch(clean, kmax, kmin, alpha, mask=mask)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(grad_in, expected_grad)


@in_interpreter
@pytest.mark.parametrize(("kmax", "kmin"), [(3, 2), (1, 1)])
def test_kernels_with_ties_keep_a_valid_selection(kmax, kmin, sort_up_to):
    torch.manual_seed(2)
    scores = torch.randint(-2, 3, (2, 3, 11)).float()
    out, grad_in = run_kernels(scores, kmax, kmin, 0.5)
    expected, _ = run_torch(scores, kmax, kmin, 0.5)
    torch.testing.assert_close(out, expected)
    # the gradient weighs kmax regions by 1/kmax and kmin by alpha/kmin, and they are extremes
    torch.testing.assert_close((grad_in * scores).sum(2), out)
    torch.testing.assert_close(grad_in.sum(2), torch.full_like(out, 1.5))
    high = grad_in >= 1 / kmax - 1e-6
    kept_low = scores.masked_fill(high, float("inf")).amin(2)
    assert torch.all(scores.masked_fill(~high, float("inf")).amin(2) >= kept_low)


@in_interpreter
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_kernels_low_precision(dtype, sort_up_to):
    torch.manual_seed(3)
    scores = torch.randn(2, 3, 16)
    out, grad_in = run_kernels(scores.to(dtype), 4, 2, 0.7)
    expected, expected_grad = run_torch(scores, 4, 2, 0.7)
    assert out.dtype == dtype and grad_in.dtype == dtype
    torch.testing.assert_close(out.float(), expected, atol=0.02, rtol=0.01)
    torch.testing.assert_close(grad_in.float(), expected_grad, atol=0.01, rtol=0.01)


@in_interpreter
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize(
    ("shape", "kmax", "kmin", "alpha"),
    [((2, 3, 9, 9), 0.2, 0.2, 0.7), ((2, 2, 7), 1, 1, 1.0), ((1, 2, 20), 15, 12, 0.4)],
)
def test_every_path_of_wildcat_pool_agrees(monkeypatch, shape, kmax, kmin, alpha, masked):
    """wildcat_pool forced onto each path choose_path can name: same values and gradients."""
    torch.manual_seed(5)
    scores = torch.randn(shape)
    grad = torch.randn(shape[:2])
    mask = None
    if masked:
        mask = torch.rand(shape[0], *shape[2:]) < 0.7
        mask.view(shape[0], -1)[:, 0] = True
    results = {}
    for path in ("triton", "sort", "select"):
        with monkeypatch.context() as patch:
            patch.setattr(_wildcat_triton, "supports", lambda flat, on=path != "select": on)
            patch.setattr(wildcat, "choose_path", lambda *args, path=path, **kwargs: path)
            results[path] = run_torch(scores, kmax, kmin, alpha, mask, grad)
    assert _wildcat_triton.disabled is None, _wildcat_triton.disabled  # the kernels ran
    for path in ("triton", "sort"):
        torch.testing.assert_close(results[path][0], results["select"][0])
        torch.testing.assert_close(results[path][1], results["select"][1])


@in_interpreter
def test_kernels_keep_nan_for_the_caller_to_report(sort_up_to):
    scores = torch.randn(2, 2, 6)
    scores[1, 0, 3] = float("nan")
    out, _ = run_kernels(scores, 2, 2, 1.0)
    assert torch.isnan(out[1, 0]) and not torch.isnan(out[0]).any()


def assert_gpu_equals_cpu(scores, kmax, kmin, alpha, mask=None, grad=None, gpu_run=run_torch):
    """``gpu_run`` on CUDA copies of the inputs (the kernels on) equals wildcat_pool on the CPU:
    output and gradient."""
    cpu = run_torch(scores, kmax, kmin, alpha, mask, grad)
    gpu = gpu_run(
        scores.cuda(), kmax, kmin, alpha, None if mask is None else mask.cuda(), grad.cuda()
    )
    assert _wildcat_triton.disabled is None, _wildcat_triton.disabled  # the kernels ran
    torch.testing.assert_close(gpu[0].cpu(), cpu[0])
    torch.testing.assert_close(gpu[1].cpu(), cpu[1])


def random_mask(batch: int, side: int, share: float) -> torch.Tensor:
    """(batch, side, side) bool, about ``share`` valid, the first region of each sample valid."""
    mask = torch.rand(batch, side, side) < share
    mask[:, 0, 0] = True
    return mask


@pytest.mark.skipif(
    INTERPRETED or not torch.cuda.is_available(), reason="needs a CUDA device (compiled kernels)"
)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize(
    ("kmax", "kmin", "alpha"), [(1, 1, 1.0), (0.05, 0.05, 0.7), (0.5, 0.5, 0.7)]
)
def test_gpu_path_equals_the_cpu(kmax, kmin, alpha, masked):
    assert _wildcat_triton.supports(torch.zeros(1, 1, 1, device="cuda"))
    torch.manual_seed(4)
    scores = torch.randn(4, 20, 14, 14)
    mask = random_mask(4, 14, 0.7) if masked else None
    assert_gpu_equals_cpu(scores, kmax, kmin, alpha, mask, torch.randn(4, 20))
    nan = scores.cuda()
    nan[2, 3, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN in a valid region of batch index 2, class 3"):
        wildcat_pool(nan, kmax, kmin, alpha)


@pytest.mark.skipif(
    INTERPRETED or not torch.cuda.is_available(), reason="needs a CUDA device (compiled kernels)"
)
@pytest.mark.parametrize("k", [1, 0.2])
def test_gpu_paths_for_many_long_rows_equal_the_cpu(k):
    """1,600 rows of 28x28: k = 1 takes the kernels' reductions, k = 0.2 one torch.sort."""
    torch.manual_seed(6)
    scores = torch.randn(8, 200, 28, 28)
    expected_path = "triton" if k == 1 else "sort"
    assert wildcat.choose_path(1600, 784, 1 if k == 1 else 157, fused=True) == expected_path
    assert_gpu_equals_cpu(scores, k, k, 0.7, grad=torch.randn(8, 200))


@pytest.mark.skipif(
    INTERPRETED or not torch.cuda.is_available(), reason="needs a CUDA device (compiled kernels)"
)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize(("kmax", "kmin", "alpha"), [(0.2, 0.2, 0.7), (0.9, 0.5, 0.3), (5, 0, 1.0)])
def test_gpu_selection_of_long_rows_equals_the_cpu(kmax, kmin, alpha, masked):
    """Rows of 28x28 (a 1,024-key block): the kernels search both ends' thresholds."""
    assert _wildcat_triton.SORT_UP_TO < 1024
    torch.manual_seed(7)
    scores = torch.randn(4, 30, 28, 28)
    mask = random_mask(4, 28, 0.6) if masked else None
    grad = torch.randn(4, 30)
    assert_gpu_equals_cpu(scores, kmax, kmin, alpha, mask, grad, gpu_run=run_kernels)
