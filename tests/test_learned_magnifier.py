"""Learning-based magnifier: network structure, safe loading, and the real reference frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import require
from uamrn.magnify.learned import LearnedMagnifier, MagnificationNet, load_magnification_net

PAIR = "casme2_sub01_EP02_01f"
WEIGHTS = f"{PAIR}/learned_magnifier/learning_based_mag.pth.tar"


def _random_net(seed: int = 0) -> MagnificationNet:
    torch.manual_seed(seed)
    net = MagnificationNet().eval()
    with torch.no_grad():
        for param in net.parameters():
            param.mul_(0.3)
    return net


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def _read_rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_net_output_shape():
    net = _random_net()
    onset = torch.rand(1, 3, 32, 40) * 2 - 1
    apex = torch.rand(1, 3, 32, 40) * 2 - 1
    with torch.inference_mode():
        out = net(onset, apex, torch.tensor([2.0, 3.0, 4.0]))
    assert out.shape == (3, 3, 32, 40)


def test_manipulator_factor_one_keeps_apex():
    net = _random_net()
    shape_a = torch.randn(1, 32, 8, 8)
    shape_b = torch.randn(1, 32, 8, 8)
    with torch.inference_mode():
        out = net.manipulator(shape_a, shape_b, torch.tensor([1.0]))
    assert torch.allclose(out[0], shape_b[0])


def test_manipulator_matches_direct_form():
    # The implementation applies h's first convolution before scaling; the published order
    # scales first. Both must agree because that convolution is linear and bias-free.
    net = _random_net(1)
    manipulator = net.manipulator
    shape_a = torch.randn(1, 32, 10, 12)
    shape_b = torch.randn(1, 32, 10, 12)
    factors = torch.tensor([2.0, 7.5, 13.0])
    with torch.inference_mode():
        out = manipulator(shape_a, shape_b, factors)
        motion = manipulator.convblks(shape_b - shape_a)
        direct = [
            shape_b[0] + manipulator.resblks(manipulator.convblks_after((a - 1.0) * motion))[0]
            for a in factors
        ]
    assert torch.allclose(out, torch.stack(direct), atol=1e-5)


def test_net_batches_independent():
    net = _random_net()
    onset = torch.rand(1, 3, 16, 16) * 2 - 1
    apex = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.inference_mode():
        together = net(onset, apex, torch.tensor([2.0, 5.0]))
        alone = net(onset, apex, torch.tensor([5.0]))
    assert torch.allclose(together[1], alone[0], atol=1e-5)


def test_load_round_trip(tmp_path):
    net = _random_net()
    path = tmp_path / "mag.pth.tar"
    state = {f"module.{key}": value for key, value in net.state_dict().items()}
    torch.save({"state_dict": state, "time": 0.0}, path)
    loaded = load_magnification_net(path)
    assert torch.equal(loaded.decoder.conv2.weight, net.decoder.conv2.weight)


def test_load_bare_state_dict(tmp_path):
    net = _random_net()
    path = tmp_path / "bare.pt"
    torch.save(net.state_dict(), path)
    assert torch.equal(load_magnification_net(path).encoder.conv1.weight, net.encoder.conv1.weight)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_magnification_net(tmp_path / "absent.pth")


def test_load_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="corrupt.pth"):
        load_magnification_net(path)


class _Payload:
    """A class that weights_only loading must reject."""


def test_load_rejects_pickled_object(tmp_path):
    path = tmp_path / "object.pth"
    torch.save({"state_dict": _Payload()}, path)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_magnification_net(path)


def test_load_rejects_wrong_keys(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {"layer.weight": torch.zeros(3, 3)}}, path)
    with pytest.raises(ValueError, match="do not fit"):
        load_magnification_net(path)


def test_magnify_resizes_back():
    magnifier = LearnedMagnifier(_random_net(), network_size=32)
    rng = np.random.default_rng(0)
    onset = rng.integers(0, 256, size=(30, 22, 3), dtype=np.uint8)
    frames = magnifier.magnify(onset, onset, [2.0, 4.0, 6.0])
    assert frames.shape == (3, 30, 22, 3)
    assert frames.dtype == np.uint8


def test_magnify_network_size_output():
    magnifier = LearnedMagnifier(_random_net(), network_size=32)
    onset = np.zeros((30, 22, 3), np.uint8)
    assert magnifier.magnify(onset, onset, [2.0], resize_back=False).shape == (1, 32, 32, 3)


def test_magnify_grey_input():
    magnifier = LearnedMagnifier(_random_net(), network_size=16)
    onset = np.full((20, 20), 90, np.uint8)
    assert magnifier.magnify(onset, onset, [2.0]).shape == (1, 20, 20)


def test_magnify_rejects_size_mismatch():
    magnifier = LearnedMagnifier(_random_net(), network_size=16)
    with pytest.raises(ValueError, match="differ in shape"):
        magnifier.magnify(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 21, 3), np.uint8), [2.0])


def test_magnifier_rejects_bad_network_size():
    with pytest.raises(ValueError, match="multiple of 4"):
        LearnedMagnifier(_random_net(), network_size=30)


def _reference_psnr(shared_data, factors: np.ndarray) -> list[float]:
    torch.set_num_threads(2)
    pair = shared_data / PAIR
    magnifier = LearnedMagnifier.from_file(require(shared_data / WEIGHTS), batch_size=2)
    onset = _read_rgb(require(pair / "onset_reg_img46.jpg"))
    apex = _read_rgb(require(pair / "apex_reg_img59.jpg"))
    frames = magnifier.magnify(onset, apex, factors, resize_back=False)
    references = [_read_rgb(require(pair / f"learned_magnifier/output/{round(a, 2)}.jpg")) for a in factors]
    return [_psnr(frame, reference) for frame, reference in zip(frames, references)]


def test_reference_frames_end_factors(shared_data):
    first, last = _reference_psnr(shared_data, np.linspace(2, 12, 32)[[0, -1]])
    assert first >= 35.0
    assert last >= 35.0


@pytest.mark.slow
def test_reference_frames_all_factors(shared_data):
    values = _reference_psnr(shared_data, np.linspace(2, 12, 32))
    assert len(values) == 32
    assert min(values) >= 35.0
