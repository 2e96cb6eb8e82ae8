"""Magnifiers that rebuild a sequence from an onset and an apex frame, one frame per factor.

``magnify_linear`` needs no weights. ``LearnedMagnifier`` runs the learning-based network of
Oh et al. (ECCV 2018) from a weights file; it is imported on first access so that the
linear magnifier does not pull in torch.
"""

from uamrn.magnify.factors import check_factors, parse_factors
from uamrn.magnify.linear import check_pair, magnify_linear

__all__ = ["LearnedMagnifier", "check_factors", "check_pair", "magnify_linear", "parse_factors"]


def __getattr__(name: str):
    if name == "LearnedMagnifier":
        from uamrn.magnify.learned import LearnedMagnifier

        return LearnedMagnifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
