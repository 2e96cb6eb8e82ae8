"""Neural-network modules of UAMRN; they know nothing about datasets or training loops."""

from uamrn.nn.attention import SparseSelfAttention, masked_softmax
from uamrn.nn.block import SSABlock
from uamrn.nn.dropout import MCDropout, mc_dropout_active
from uamrn.nn.frontend import FlowPixels, FrontEnd, build_frontend
from uamrn.nn.head import UncertaintyHead
from uamrn.nn.lsh import draw_hyperplanes, lsh_attention_mask, lsh_buckets
from uamrn.nn.mini_xception import FER2013_CLASSES, MiniXception, MiniXceptionFrontEnd, load_mini_xception
from uamrn.nn.position import SinusoidalPositionEncoding, sinusoidal_encoding
from uamrn.nn.resnet import ResNet18, ResNet18FrontEnd, load_resnet18_checkpoint
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
    "MiniXception",
    "MiniXceptionFrontEnd",
    "ResNet18",
    "ResNet18FrontEnd",
    "FER2013_CLASSES",
    "SinusoidalPositionEncoding",
    "build_frontend",
    "draw_hyperplanes",
    "lsh_attention_mask",
    "lsh_buckets",
    "load_mini_xception",
    "load_resnet18_checkpoint",
    "masked_softmax",
    "mc_dropout_active",
    "sample_uncertainty",
    "sinusoidal_encoding",
]
