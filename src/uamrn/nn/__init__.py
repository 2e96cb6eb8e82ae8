"""Neural-network modules of UAMRN; they know nothing about datasets or training loops."""

from uamrn.nn.attention import SparseSelfAttention, masked_softmax
from uamrn.nn.block import SSABlock
from uamrn.nn.dropout import MCDropout, mc_dropout_active
from uamrn.nn.frontend import FlowPixels, FrontEnd, build_frontend
from uamrn.nn.head import UncertaintyHead
from uamrn.nn.lsh import draw_hyperplanes, lsh_attention_mask, lsh_buckets
from uamrn.nn.position import SinusoidalPositionEncoding, sinusoidal_encoding
from uamrn.nn.uamrn import UAMRN, UAMRNOutput, sample_uncertainty

__all__ = [
    "UAMRN",
    "UAMRNOutput",
    "SSABlock",
    "SparseSelfAttention",
    "UncertaintyHead",
    "MCDropout",
    "FrontEnd",
    "FlowPixels",
    "SinusoidalPositionEncoding",
    "build_frontend",
    "draw_hyperplanes",
    "lsh_attention_mask",
    "lsh_buckets",
    "masked_softmax",
    "mc_dropout_active",
    "sample_uncertainty",
    "sinusoidal_encoding",
]
