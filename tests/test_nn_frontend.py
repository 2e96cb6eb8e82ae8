"""Front-end factory and the flow_pixels front end."""

from __future__ import annotations

import pytest
import torch

from uamrn.config import FrontEndConfig
from uamrn.nn import FlowPixels, build_frontend
from uamrn.nn.frontend import to_grey


def test_flow_pixels_shape_and_centring():
    frontend = build_frontend(FrontEndConfig(name="flow_pixels"))
    frames = torch.rand(4, 3, 28, 28)
    features = frontend(frames)

    assert isinstance(frontend, FlowPixels)
    assert frontend.feature_dim == 2352
    assert features.shape == (4, 2352)
    channel_means = features.view(4, 3, -1).mean(dim=-1)
    assert torch.allclose(channel_means, torch.zeros(4, 3), atol=1e-6)


def test_flow_pixels_keeps_28_pixels():
    frames = torch.rand(1, 3, 28, 28)
    features = FlowPixels()(frames)
    expected = (frames - frames.mean(dim=(-2, -1), keepdim=True)).flatten(1)
    assert torch.allclose(features, expected)


def test_flow_pixels_resizes_larger_frames():
    frames = torch.rand(2, 3, 224, 224)
    assert FlowPixels()(frames).shape == (2, 2352)


def test_frontend_stays_frozen():
    frontend = build_frontend(FrontEndConfig(name="flow_pixels"))
    frontend.train()
    assert not frontend.training


@pytest.mark.parametrize("shape", [(3, 28, 28), (2, 1, 28, 28), (2, 4, 28, 28)])
def test_frontend_rejects_bad_shape(shape):
    with pytest.raises(ValueError, match="N, 3, H, W"):
        FlowPixels()(torch.rand(*shape))


def test_to_grey_weights():
    frames = torch.zeros(1, 3, 2, 2)
    frames[:, 1] = 1.0
    assert torch.allclose(to_grey(frames), torch.full((1, 1, 2, 2), 0.587))
