"""mini-Xception: TensorFlow padding, the shipped FER2013 weights, the front end, and real faces."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from uamrn.config import FrontEndConfig
from uamrn.nn import build_frontend
from uamrn.nn.mini_xception import (
    FER2013_CLASSES,
    SHIPPED_WEIGHTS,
    MiniXceptionFrontEnd,
    load_mini_xception,
    max_pool_same,
    tf_same_padding,
)

REPO = Path(__file__).resolve().parents[1]
HAPPY = FER2013_CLASSES.index("happy")

# Logits of the original Keras graph (NumPy forward pass over the fer HDF5 arrays in
# scripts/convert_fer_weights.py) for the input of keras_reference_input().
KERAS_REFERENCE_LOGITS = [3.21602, -12.2378, 0.41928, 0.4713, 2.35748, 8.0496, -0.89813]
KERAS_REFERENCE_MAP_SUM = -556.5404


def keras_reference_input() -> torch.Tensor:
    return torch.sin(torch.arange(64 * 64, dtype=torch.float64) * 0.05).view(1, 1, 64, 64).float()


def load_check_script():
    spec = importlib.util.spec_from_file_location("check_fer_frll", REPO / "scripts" / "check_fer_frll.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "size, kernel, stride, expected",
    [(60, 3, 2, (0, 1)), (15, 3, 2, (1, 1)), (8, 3, 2, (0, 1)), (60, 1, 2, (0, 0)), (64, 3, 1, (1, 1))],
)
def test_tf_same_padding(size, kernel, stride, expected):
    assert tf_same_padding(size, kernel, stride) == expected


def test_max_pool_same_windows_start_at_zero():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    pooled = max_pool_same(x)
    # windows cover rows/columns {0,1,2} and {2,3,pad}
    assert pooled.shape == (1, 1, 2, 2)
    assert pooled.flatten().tolist() == [10.0, 11.0, 14.0, 15.0]


def test_shipped_weights_match_keras():
    model = load_mini_xception()
    with torch.no_grad():
        logits = model(keras_reference_input())[0]
        feature_map = model.features(keras_reference_input())
    assert torch.allclose(logits, torch.tensor(KERAS_REFERENCE_LOGITS), atol=1e-3)
    assert feature_map.shape == (1, 128, 4, 4)
    assert abs(float(feature_map.sum()) - KERAS_REFERENCE_MAP_SUM) < 1e-2


def test_shipped_files_present():
    folder = SHIPPED_WEIGHTS.parent
    assert SHIPPED_WEIGHTS.is_file()
    assert "MIT License" in (folder / "LICENSE").read_text()
    assert "FER2013" in (folder / "MODEL_CARD.md").read_text()


def test_missing_weights_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.safetensors"):
        load_mini_xception(tmp_path / "absent.safetensors")


def test_frontend_default_features():
    frontend = build_frontend(FrontEndConfig())
    frontend.train()
    features = frontend(torch.rand(3, 3, 224, 224))

    assert isinstance(frontend, MiniXceptionFrontEnd)
    assert frontend.feature_dim == 512
    assert features.shape == (3, 512)
    assert not frontend.training
    assert not any(p.requires_grad for p in frontend.parameters())


def test_frontend_pool_sets_dim():
    frontend = build_frontend(FrontEndConfig(pool=1))
    assert frontend(torch.rand(2, 3, 64, 64)).shape == (2, 128)


def test_frontend_rejects_uint8():
    frontend = build_frontend(FrontEndConfig())
    with pytest.raises(ValueError, match="255"):
        frontend(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


def test_frll_faces_smile_raises_happy(shared_data):
    """On the same people, the smiling photo gets a higher happy probability than the neutral one."""
    frll = shared_data / "frll_london"
    if not frll.is_dir():
        pytest.skip(f"real data not found: {frll}")
    check = load_check_script()
    cascade = check.load_cascade()
    frontend = MiniXceptionFrontEnd()

    people = ["001", "002", "003", "004", "005", "006", "007", "008"]
    smiling, missed_smiling = check.crop_faces([frll / "smiling_front" / f"{p}_08.jpg" for p in people], cascade)
    neutral, missed_neutral = check.crop_faces([frll / "neutral_front" / f"{p}_03.jpg" for p in people], cascade)
    assert not missed_smiling
    assert not missed_neutral

    _, smiling_probabilities = check.classify_crops(smiling, frontend)
    _, neutral_probabilities = check.classify_crops(neutral, frontend)
    happier = smiling_probabilities[:, HAPPY] > neutral_probabilities[:, HAPPY]
    neutral_predictions = neutral_probabilities.argmax(dim=1)

    assert int(happier.sum()) >= 7
    assert int((neutral_predictions != HAPPY).sum()) >= 7
