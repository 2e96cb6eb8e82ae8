"""The UAMRN loss: stop-gradient gamma, heteroscedastic term, and the deterministic ablation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from uamrn.config import cpu_model
from uamrn.nn import UAMRN, UAMRNOutput
from uamrn.train.losses import heteroscedastic_cross_entropy, uamrn_loss, weighted_cross_entropy


def make_output(batch: int = 6, classes: int = 3, passes: int = 4) -> tuple[UAMRNOutput, dict]:
    torch.manual_seed(0)
    leaves = {
        "mc_logits": torch.randn(passes, batch, classes, requires_grad=True),
        "variance": (torch.rand(batch, classes) + 0.1).requires_grad_(),
        "gamma": (torch.rand(batch) + 0.5).requires_grad_(),
    }
    output = UAMRNOutput(
        logits=leaves["mc_logits"].mean(dim=0),
        mc_logits=leaves["mc_logits"],
        variance=leaves["variance"],
        gamma=leaves["gamma"] * 1.0,  # non-leaf that would carry gradient if not detached
    )
    return output, leaves


def test_uncertainty_off_equals_cross_entropy():
    output, _ = make_output()
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    expected = F.cross_entropy(output.mc_logits.mean(dim=0), target)
    assert torch.allclose(uamrn_loss(output, target, uncertainty=False), expected)


def test_uncertainty_off_ignores_variance_and_gamma():
    output, leaves = make_output()
    uamrn_loss(output, torch.tensor([0, 1, 2, 0, 1, 2]), uncertainty=False).backward()
    assert leaves["variance"].grad is None
    assert leaves["gamma"].grad is None


def test_no_gradient_into_gamma():
    output, leaves = make_output()
    loss = uamrn_loss(output, torch.tensor([0, 1, 2, 0, 1, 2]), uncertainty=True)
    loss.backward()
    assert leaves["gamma"].grad is None
    assert leaves["variance"].grad is not None
    assert leaves["mc_logits"].grad is not None


def test_model_gamma_detached():
    model = UAMRN(cpu_model(), in_features=12, num_classes=3).train()
    output = model(torch.randn(4, 5, 12))
    assert not output.gamma.requires_grad
    assert output.gamma.grad_fn is None


def test_weighted_ce_normalises_gamma():
    logits = torch.randn(5, 3)
    target = torch.tensor([0, 1, 2, 1, 0])
    plain = F.cross_entropy(logits, target)
    assert torch.allclose(weighted_cross_entropy(logits, target, torch.full((5,), 7.0)), plain)


def test_weighted_ce_weights_samples():
    logits = torch.randn(2, 3)
    target = torch.tensor([0, 1])
    per_sample = F.cross_entropy(logits, target, reduction="none")
    loss = weighted_cross_entropy(logits, target, torch.tensor([3.0, 1.0]))
    assert torch.allclose(loss, (1.5 * per_sample[0] + 0.5 * per_sample[1]) / 2)


def test_heteroscedastic_small_variance_is_ce():
    logits = torch.randn(4, 3)
    target = torch.tensor([2, 0, 1, 1])
    loss = heteroscedastic_cross_entropy(logits, torch.full((4, 3), 1e-12), target)
    assert torch.allclose(loss, F.cross_entropy(logits, target), atol=1e-5)


def test_heteroscedastic_grows_for_confident_wrong():
    logits = torch.tensor([[8.0, 0.0, 0.0]])
    target = torch.tensor([1])
    torch.manual_seed(0)
    small = heteroscedastic_cross_entropy(logits, torch.full((1, 3), 1e-6), target, n_samples=256)
    torch.manual_seed(0)
    large = heteroscedastic_cross_entropy(logits, torch.full((1, 3), 25.0), target, n_samples=256)
    assert large < small  # predicted noise lowers the loss of a wrong, confident prediction


def test_target_shape_mismatch_raises():
    output, _ = make_output()
    with pytest.raises(ValueError, match="target"):
        uamrn_loss(output, torch.tensor([0, 1]), uncertainty=True)
