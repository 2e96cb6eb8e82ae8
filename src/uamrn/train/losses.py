"""The UAMRN training loss: gamma-weighted cross-entropy plus a heteroscedastic term.

With ``uncertainty=True`` (the default of the method):

* gamma (per-sample uncertainty) is a stop-gradient weight, normalised to mean 1 over
  the batch, on the cross-entropy of the mean logits. If gradients flowed into gamma,
  the network could lower the loss by shrinking gamma towards zero.
* The variance head is trained by the heteroscedastic classification loss of Kendall &
  Gal (2017): the expected cross-entropy over logits sampled as y_bar + sigma * eps,
  eps ~ N(0, 1), estimated with ``n_samples`` draws.

With ``uncertainty=False`` the loss is plain cross-entropy on the mean logits, the
deterministic ablation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from uamrn.nn.uamrn import UAMRNOutput

__all__ = ["uamrn_loss", "weighted_cross_entropy", "heteroscedastic_cross_entropy"]

# Draws of the logit noise used to estimate the heteroscedastic term.
HETEROSCEDASTIC_SAMPLES = 16


def weighted_cross_entropy(logits: Tensor, target: Tensor, gamma: Tensor) -> Tensor:
    """Cross-entropy weighted per sample by gamma, normalised to mean 1, with no gradient into gamma.

    Args:
        logits: (B, C).
        target: (B,) class indices.
        gamma: (B,) non-negative weights; detached here whatever the caller passes.

    Returns:
        Scalar: mean over the batch of gamma_n / mean(gamma) * CE_n.
    """
    weight = gamma.detach()
    weight = weight / weight.mean().clamp_min(torch.finfo(weight.dtype).tiny)
    per_sample = F.cross_entropy(logits, target, reduction="none")
    return (weight * per_sample).mean()


def heteroscedastic_cross_entropy(
    logits: Tensor, variance: Tensor, target: Tensor, n_samples: int = HETEROSCEDASTIC_SAMPLES
) -> Tensor:
    """Estimate -log E_eps[softmax(logits + sqrt(variance) * eps)_target] by Monte Carlo.

    Args:
        logits: (B, C) mean logits.
        variance: (B, C) positive sigma^2.
        target: (B,) class indices.
        n_samples: Number of noise draws T.

    Returns:
        Scalar: mean over the batch.
    """
    noise = torch.randn((n_samples, *logits.shape), device=logits.device, dtype=logits.dtype)
    sampled = logits + variance.sqrt() * noise  # (T, B, C)

    log_probs = F.log_softmax(sampled, dim=-1)
    index = target.view(1, -1, 1).expand(n_samples, -1, 1)
    target_log_probs = log_probs.gather(-1, index).squeeze(-1)  # (T, B)

    # log of the mean probability over draws, computed in log space for stability
    log_expected = torch.logsumexp(target_log_probs, dim=0) - math.log(n_samples)
    return -log_expected.mean()


def uamrn_loss(output: UAMRNOutput, target: Tensor, uncertainty: bool) -> Tensor:
    """Compute the training loss of one batch.

    Args:
        output: The model's output for the batch (logits (B, C), variance (B, C), gamma (B,)).
        target: (B,) long class indices.
        uncertainty: True for the gamma-weighted loss plus the heteroscedastic term,
            False for plain cross-entropy on the mean logits.

    Returns:
        Scalar loss.
    """
    if target.dim() != 1 or target.shape[0] != output.logits.shape[0]:
        raise ValueError(
            f"target must have shape ({output.logits.shape[0]},) to match the logits, "
            f"got {tuple(target.shape)}"
        )

    if not uncertainty:
        return F.cross_entropy(output.logits, target)

    weighted = weighted_cross_entropy(output.logits, target, output.gamma)
    return weighted + heteroscedastic_cross_entropy(output.logits, output.variance, target)
