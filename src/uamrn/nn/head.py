"""Classification head that outputs class logits and an aleatoric variance per class."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["UncertaintyHead"]

# The log-variance is clamped so exp() stays finite and the variance never reaches zero.
LOG_VARIANCE_RANGE = (-10.0, 10.0)


class UncertaintyHead(nn.Module):
    """Mean-pool the tokens, then predict logits and sigma^2 with two linear layers.

    Args:
        d_model: Token width D.
        num_classes: Number of classes C.
    """

    def __init__(self, d_model: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.logits = nn.Linear(d_model, num_classes)
        self.log_variance = nn.Linear(d_model, num_classes)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Map tokens (B, L, D) to logits (B, C) and variance sigma^2 (B, C), all positive."""
        pooled = self.norm(tokens).mean(dim=1)
        log_variance = self.log_variance(pooled).clamp(*LOG_VARIANCE_RANGE)
        return self.logits(pooled), torch.exp(log_variance)
