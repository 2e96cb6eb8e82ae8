"""ResNet-18: torchvision key names and shapes, numerical match, checkpoint formats, front end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from uamrn.config import FrontEndConfig
from uamrn.nn import build_frontend
from uamrn.nn.resnet import ResNet18, ResNet18FrontEnd, load_resnet18_checkpoint

FIXTURE = Path(__file__).parent / "fixtures" / "torchvision_resnet18_keys.json"


def torchvision_listing() -> dict:
    return json.loads(FIXTURE.read_text())


def fill_deterministic(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The fill of scripts/dump_torchvision_keys.py; the two must stay identical."""
    filled = {}
    for position, (name, tensor) in enumerate(state.items()):
        if not tensor.is_floating_point():
            filled[name] = tensor.clone()
            continue
        wave = torch.sin(torch.arange(tensor.numel(), dtype=torch.float64) * 0.37 + position).view(tensor.shape)
        if name.endswith("running_var"):
            value = 1.0 + 0.5 * wave.square()
        elif tensor.dim() > 1:
            value = wave * math.sqrt(2.0 / tensor[0].numel())
        elif name.endswith("weight"):
            value = 1.0 + 0.1 * wave
        else:
            value = 0.1 * wave
        filled[name] = value.to(tensor.dtype)
    return filled


def reference_image() -> torch.Tensor:
    index = torch.arange(3 * 64 * 64, dtype=torch.float64)
    return torch.sin(index * 0.013).view(1, 3, 64, 64).float()


def test_keys_match_torchvision():
    ours = {name: list(tensor.shape) for name, tensor in ResNet18().state_dict().items()}
    expected = torchvision_listing()["keys"]
    assert list(ours) == list(expected)
    assert ours == expected


def test_outputs_match_torchvision():
    model = ResNet18()
    model.load_state_dict(fill_deterministic(model.state_dict()))
    model.eval()
    reference = torchvision_listing()["reference"]

    with torch.no_grad():
        logits = model(reference_image())
        layer3 = torch.nn.functional.adaptive_avg_pool2d(model.features(reference_image(), "layer3"), 2).flatten()

    assert torch.allclose(logits[0, :16], torch.tensor(reference["logits_first_16"]), atol=1e-4)
    assert torch.allclose(layer3[:16], torch.tensor(reference["layer3_pool2_first_16"]), atol=1e-4)
    assert math.isclose(float(layer3.sum()), reference["layer3_pool2_sum"], rel_tol=1e-5)


def test_torchvision_checkpoint_loads_with_fc(tmp_path):
    source = ResNet18()
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    model, has_fc = load_resnet18_checkpoint(tmp_path / "resnet18.pth")
    assert has_fc
    assert torch.equal(model.fc.weight, source.fc.weight)
    assert not model.training


def test_torchvision_checkpoint_is_strict(tmp_path):
    state = ResNet18().state_dict()
    extra = dict(state, **{"layer5.weight": torch.zeros(1)})
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match="layer5.weight"):
        load_resnet18_checkpoint(tmp_path / "extra.pth")

    missing = {k: v for k, v in state.items() if k != "layer2.0.bn1.running_var"}
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="layer2.0.bn1.running_var"):
        load_resnet18_checkpoint(tmp_path / "missing.pth")

    reshaped = dict(state, **{"conv1.weight": torch.zeros(64, 1, 7, 7)})
    torch.save(reshaped, tmp_path / "reshaped.pth")
    with pytest.raises(ValueError, match="conv1.weight"):
        load_resnet18_checkpoint(tmp_path / "reshaped.pth")


def test_fer_plus_checkpoint_drops_fc(tmp_path):
    source = ResNet18(num_classes=8)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}, "epoch": 3}
    torch.save(wrapped, tmp_path / "fer.pth.tar")

    model, has_fc = load_resnet18_checkpoint(tmp_path / "fer.pth.tar")

    assert not has_fc
    assert torch.equal(model.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    assert torch.equal(model.bn1.running_mean, source.bn1.running_mean)


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_resnet18_checkpoint(tmp_path / "nope.pth")


@pytest.mark.parametrize("stage, channels, side", [("layer1", 64, 56), ("layer2", 128, 28), ("layer3", 256, 14), ("layer4", 512, 7)])
def test_stage_map_sizes(stage, channels, side):
    with torch.no_grad():
        feature_map = ResNet18().eval().features(torch.rand(1, 3, 224, 224), stage)
    assert feature_map.shape == (1, channels, side, side)


def test_frontend_frozen_pooled(tmp_path):
    torch.save(ResNet18().state_dict(), tmp_path / "resnet18.pth")
    frontend = build_frontend(FrontEndConfig(name="resnet18", weights=tmp_path / "resnet18.pth", pool=2))
    frontend.train()

    features = frontend(torch.rand(3, 3, 112, 112))

    assert isinstance(frontend, ResNet18FrontEnd)
    assert frontend.feature_dim == 256 * 4
    assert features.shape == (3, 1024)
    assert not frontend.training
    assert not any(p.requires_grad for p in frontend.parameters())


def test_frontend_without_weights_raises():
    with pytest.raises(ValueError, match="weights"):
        build_frontend(FrontEndConfig(name="resnet18"))
