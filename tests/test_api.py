"""The Python inference API: loading, predicting pairs and clips, the figure."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from uamrn.api import Predictor, find_model_dir, save_figure
from uamrn.config import DataConfig, FrontEndConfig, ModelConfig, RunConfig, SequenceConfig
from uamrn.data.demo import DemoSpec, generate
from uamrn.data.sample import SampleSet
from uamrn.spotting import read_image

LENGTH = 4
N_BLOCKS = 2
N_HEADS = 2


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run directory with an untrained but complete final/ model, and its demo samples."""
    from uamrn.nn import UAMRN, build_frontend
    from uamrn.train.runio import ModelMeta, save_model

    root = tmp_path_factory.mktemp("api")
    demo_set = generate(root / "data", DemoSpec(n_subjects=2, samples_per_subject=2, seed=5))
    cfg = RunConfig(
        data=DataConfig(dataset="demo", root=root / "data", input="frames"),
        sequence=SequenceConfig(length=LENGTH),
        frontend=FrontEndConfig(name="mini_xception"),
        model=ModelConfig(d_model=16, n_blocks=N_BLOCKS, n_heads=N_HEADS, mc_samples=3),
    )
    in_features = build_frontend(cfg.frontend).feature_dim
    model = UAMRN(cfg.model, in_features, len(demo_set.class_names))
    mean = np.linspace(-0.1, 0.1, in_features, dtype=np.float32)
    std = np.linspace(0.5, 1.5, in_features, dtype=np.float32)
    save_model(root / "run" / "final", model, ModelMeta(cfg, in_features, demo_set.class_names, mean, std))
    return root / "run", demo_set


@pytest.fixture(scope="module")
def predictor(trained):
    return Predictor.load(trained[0])


@pytest.fixture(scope="module")
def prediction(predictor, trained):
    sample = trained[1].samples[0]
    return predictor.predict(sample.onset, sample.apex)


def test_find_model_dir_resolves_final(trained):
    run_dir, _ = trained
    assert find_model_dir(run_dir) == run_dir / "final"
    assert find_model_dir(run_dir / "final") == run_dir / "final"


def test_find_model_dir_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="model not found"):
        find_model_dir(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="model file not found"):
        find_model_dir(tmp_path)


def test_prediction_probabilities(prediction, predictor):
    assert tuple(prediction.probabilities) == predictor.class_names
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction.label == max(prediction.probabilities, key=prediction.probabilities.get)
    assert prediction.class_names[prediction.label_index] == prediction.label


def test_prediction_gamma(prediction):
    assert np.isfinite(prediction.gamma)
    assert prediction.gamma >= 0


def test_prediction_attention_shapes(prediction):
    assert len(prediction.attention) == N_BLOCKS
    for weights in prediction.attention:
        assert weights.shape == (N_HEADS, LENGTH, LENGTH)
        assert np.all(np.isfinite(weights))


def test_prediction_sequence(prediction):
    assert prediction.sequence.shape == (LENGTH, 224, 224, 3)
    assert prediction.sequence.dtype == np.uint8
    assert len(prediction.factors) == LENGTH


def test_predict_arrays_equal_paths(predictor, trained, prediction):
    sample = trained[1].samples[0]
    from_arrays = predictor.predict(read_image(sample.onset), read_image(sample.apex))
    assert from_arrays.probabilities == pytest.approx(prediction.probabilities, abs=1e-6)
    assert from_arrays.gamma == pytest.approx(prediction.gamma, rel=1e-5)


def test_predict_matches_training_features(predictor, trained):
    """The API's output for a sample equals the model applied to its LOSO features."""
    from uamrn.train.features import compute_features
    from uamrn.train.fit import predict

    _, demo_set = trained
    demo_set = SampleSet(demo_set.name, demo_set.class_names, demo_set.samples[::3])
    features = compute_features(demo_set, predictor.meta.config, cache_dir=None)
    reference = predict(predictor.model, features, predictor.meta.feature_mean, predictor.meta.feature_std)
    for index, sample in enumerate(demo_set.samples):
        result = predictor.predict(sample.onset, sample.apex)
        expected = reference.probabilities[index]
        assert [result.probabilities[name] for name in demo_set.class_names] == pytest.approx(expected.tolist(), abs=1e-5)


def test_predict_size_mismatch(predictor, trained):
    sample = trained[1].samples[0]
    onset = read_image(sample.onset)
    with pytest.raises(ValueError, match="differ in size"):
        predictor.predict(onset, onset[:-2])


def test_predict_rejects_float_array(predictor):
    with pytest.raises(ValueError, match="uint8"):
        predictor.predict(np.zeros((64, 64, 3), np.float32), np.zeros((64, 64, 3), np.float32))


def test_predict_clip_given_apex(predictor, trained, tmp_path):
    sample = trained[1].samples[1]
    for name, source in (("0.png", sample.onset), ("1.png", sample.apex), ("2.png", sample.onset)):
        (tmp_path / name).write_bytes(source.read_bytes())
    result = predictor.predict_clip(tmp_path, apex_index=1)
    assert result.apex_index == 1
    assert result.probabilities == pytest.approx(predictor.predict(sample.onset, sample.apex).probabilities, abs=1e-6)


def test_predict_clip_apex_out_of_range(predictor, trained, tmp_path):
    sample = trained[1].samples[0]
    for name in ("0.png", "1.png"):
        (tmp_path / name).write_bytes(sample.onset.read_bytes())
    with pytest.raises(ValueError, match="out of range"):
        predictor.predict_clip(tmp_path, apex_index=0)


def test_save_figure_writes_png(prediction, tmp_path):
    path = save_figure(prediction, tmp_path / "sub" / "figure.png", title="test")
    image = cv2.imread(str(path))
    assert image is not None
    assert image.shape[1] > image.shape[0]


@pytest.mark.parametrize("data_input", ["flow", "apex+flow"])
def test_predict_flow_model(tmp_path, trained, data_input):
    """A model trained on optical flow gets the TV-L1 flow of the pair, 28 x 28 frames."""
    from uamrn.nn import UAMRN, build_frontend
    from uamrn.train.runio import ModelMeta, save_model

    _, demo_set = trained
    cfg = RunConfig(
        data=DataConfig(dataset="megc2019", input=data_input),
        sequence=SequenceConfig(length=LENGTH),
        model=ModelConfig(d_model=16, n_blocks=1, n_heads=N_HEADS, mc_samples=2),
    )
    in_features = build_frontend(FrontEndConfig(name="flow_pixels")).feature_dim
    if data_input == "apex+flow":
        in_features += build_frontend(cfg.frontend).feature_dim
    model = UAMRN(cfg.model, in_features, 3)
    zeros, ones = np.zeros(in_features, np.float32), np.ones(in_features, np.float32)
    save_model(tmp_path / "final", model, ModelMeta(cfg, in_features, ("negative", "positive", "surprise"), zeros, ones))

    sample = demo_set.samples[0]
    result = Predictor.load(tmp_path).predict(sample.onset, sample.apex)
    assert result.sequence.shape == (LENGTH, 28, 28, 3)
    assert set(result.probabilities) == {"negative", "positive", "surprise"}
    assert len(result.attention) == 1
