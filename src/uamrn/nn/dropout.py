"""Dropout that can stay on at inference with a seeded generator, for Monte-Carlo dropout."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

__all__ = ["MCDropout", "mc_dropout_active"]


class MCDropout(nn.Module):
    """Inverted dropout, active in training mode or inside :func:`mc_dropout_active`.

    ``nn.Dropout`` cannot take a random generator, so evaluation-time Monte-Carlo passes
    could not be made repeatable with it. This module draws its mask from ``generator``
    when one is set and from the global generator otherwise.

    Args:
        p: Probability of zeroing an element.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {p}")
        self.p = p
        self.force_active = False
        self.generator: torch.Generator | None = None
        self.shared_passes: int | None = None

    def forward(self, x: Tensor) -> Tensor:
        """Zero each element of ``x`` (any shape) with probability p and rescale the rest by 1/(1-p)."""
        if self.p == 0.0 or not (self.training or self.force_active):
            return x
        if self.shared_passes is None:
            noise = torch.rand(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
            return x * (noise >= self.p) / (1.0 - self.p)

        # One mask per pass, shared by every sample of the batch, so that a sample's
        # Monte-Carlo outputs do not depend on which other samples share its batch.
        passes = self.shared_passes
        grouped = x.reshape(passes, -1, *x.shape[1:])
        noise_shape = (passes, 1, *x.shape[1:])
        noise = torch.rand(noise_shape, generator=self.generator, device=x.device, dtype=x.dtype)
        return (grouped * (noise >= self.p) / (1.0 - self.p)).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"p={self.p}"


@contextmanager
def mc_dropout_active(
    module: nn.Module, generator: torch.Generator | None = None, shared_passes: int | None = None
) -> Iterator[None]:
    """Switch on every :class:`MCDropout` inside ``module`` for the duration of the block.

    Args:
        module: Model whose dropout layers are switched on.
        generator: Source of the dropout masks; the global generator when None.
        shared_passes: When given, the batch dimension contains this many passes stacked
            (pass-major), and each pass uses one mask for all of its samples.
    """
    layers = [m for m in module.modules() if isinstance(m, MCDropout)]
    for layer in layers:
        layer.force_active = True
        layer.generator = generator
        layer.shared_passes = shared_passes
    try:
        yield
    finally:
        for layer in layers:
            layer.force_active = False
            layer.generator = None
            layer.shared_passes = None
