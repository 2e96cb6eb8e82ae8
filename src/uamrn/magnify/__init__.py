"""Magnifiers that rebuild a sequence from an onset and an apex frame, one frame per factor.

``magnify_linear`` needs no weights; ``LearnedMagnifier`` runs the learning-based network of
Oh et al. (ECCV 2018) from a weights file.
"""

from uamrn.magnify.factors import check_factors, parse_factors
from uamrn.magnify.linear import check_pair, magnify_linear

__all__ = ["check_factors", "check_pair", "magnify_linear", "parse_factors"]
