"""`uamrn predict`, clip reading and apex spotting, including every bad-input error."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import require
from uamrn.cli import main
from uamrn.config import DataConfig, FrontEndConfig, ModelConfig, RunConfig, SequenceConfig
from uamrn.data.demo import DemoSpec, generate
from uamrn.spotting import list_frames, read_clip, spot_apex


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def moving_square(count: int, apex: int) -> list[np.ndarray]:
    """Frames of a square that moves right up to frame ``apex`` and back."""
    frames = []
    for index in range(count):
        frame = np.full((48, 64, 3), 40, np.uint8)
        shift = index if index <= apex else 2 * apex - index
        frame[10:30, 10 + 2 * shift : 30 + 2 * shift] = 220
        frames.append(frame)
    return frames


# Clip reading and apex spotting.


def test_spot_apex_largest_change():
    assert spot_apex(moving_square(9, apex=5)) == 5


def test_spot_apex_needs_two_frames():
    with pytest.raises(ValueError, match="at least two frames"):
        spot_apex(moving_square(1, apex=0))


def test_list_frames_natural_order(tmp_path):
    for name in ("img10.png", "img9.png", "img100.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_frames(tmp_path)] == ["img9.png", "img10.png", "img100.png"]


def test_read_clip_folder(tmp_path):
    for index, frame in enumerate(moving_square(4, apex=2)):
        cv2.imwrite(str(tmp_path / f"{index}.png"), frame)
    frames = read_clip(tmp_path)
    assert len(frames) == 4
    assert frames[0].shape == (48, 64, 3)


def test_read_clip_video(tmp_path):
    frames = read_clip(write_video(tmp_path / "clip.avi", moving_square(6, apex=3)))
    assert len(frames) == 6
    assert spot_apex(frames) == 3


def test_read_clip_real_frames(shared_data):
    folder = require(shared_data / "casme2_frames")
    frames = read_clip(folder)
    assert len(frames) == 10
    assert frames[0].shape == (340, 280, 3)


def test_read_clip_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no image files"):
        read_clip(tmp_path)


def test_read_clip_single_frame_video(tmp_path):
    video = write_video(tmp_path / "one.avi", moving_square(1, apex=0))
    with pytest.raises(ValueError, match="has 1 frame"):
        read_clip(video)


def test_read_clip_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="clip not found"):
        read_clip(tmp_path / "absent.mp4")


def test_read_clip_undecodable_video(tmp_path):
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"not a video")
    with pytest.raises(ValueError):
        read_clip(video)


# The command, on an untrained model saved in the run-directory layout.


@pytest.fixture(scope="module")
def model_run(tmp_path_factory):
    """A run directory whose final/ model is untrained but complete, and a demo pair."""
    from uamrn.nn import UAMRN, build_frontend
    from uamrn.train.runio import ModelMeta, save_model

    root = tmp_path_factory.mktemp("predict")
    demo_set = generate(root / "data", DemoSpec(n_subjects=2, samples_per_subject=1, seed=3))
    cfg = RunConfig(
        data=DataConfig(dataset="demo", root=root / "data", input="frames"),
        sequence=SequenceConfig(length=4),
        frontend=FrontEndConfig(name="mini_xception"),
        model=ModelConfig(d_model=16, n_blocks=2, mc_samples=2),
    )
    in_features = build_frontend(cfg.frontend).feature_dim
    model = UAMRN(cfg.model, in_features, len(demo_set.class_names))
    meta = ModelMeta(cfg, in_features, demo_set.class_names, np.zeros(in_features, np.float32), np.ones(in_features, np.float32))
    save_model(root / "run" / "final", model, meta)
    return root / "run", demo_set.samples[0]


def test_predict_pair(model_run, tmp_path, capsys):
    run_dir, sample = model_run
    figure = tmp_path / "figure.png"
    code = main(["predict", "--model", str(run_dir), "--onset", str(sample.onset), "--apex", str(sample.apex), "--out", str(figure)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "label: " in printed
    assert "lip_corner_raise" in printed
    assert "gamma (uncertainty): " in printed
    assert cv2.imread(str(figure)) is not None


def test_predict_clip_spots_apex(model_run, tmp_path, capsys):
    run_dir, sample = model_run
    clip = tmp_path / "clip"
    clip.mkdir()
    for name, source in (("000.png", sample.onset), ("001.png", sample.onset), ("002.png", sample.apex)):
        (clip / name).write_bytes(source.read_bytes())
    code = main(["predict", "--model", str(run_dir), "--clip", str(clip), "--out", str(tmp_path / "f.png")])
    assert code == 0
    assert "apex frame: 2" in capsys.readouterr().out


def test_predict_real_casme2_pair(model_run, shared_data, tmp_path, capsys):
    folder = require(shared_data / "casme2_sub01_EP02_01f")
    run_dir, _ = model_run
    figure = tmp_path / "casme2.png"
    code = main([
        "predict", "--model", str(run_dir),
        "--onset", str(folder / "onset_reg_img46.jpg"), "--apex", str(folder / "apex_reg_img59.jpg"),
        "--out", str(figure),
    ])
    assert code == 0
    assert "label: " in capsys.readouterr().out
    assert figure.is_file()


def error_of(argv: list[str], capsys) -> str:
    """Run the CLI, check that it failed with exit code 2, and return its error line."""
    code = main(argv)
    assert code == 2
    return capsys.readouterr().err


def test_error_missing_model_folder(tmp_path, capsys):
    message = error_of(["predict", "--model", str(tmp_path / "absent"), "--onset", "a.png", "--apex", "b.png"], capsys)
    assert "model not found" in message


def test_error_missing_model_file(model_run, tmp_path, capsys):
    run_dir, sample = model_run
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.yaml").write_bytes((run_dir / "final" / "model.yaml").read_bytes())
    message = error_of(["predict", "--model", str(broken), "--onset", str(sample.onset), "--apex", str(sample.apex)], capsys)
    assert "model.safetensors" in message


def test_error_folder_without_model(tmp_path, capsys):
    message = error_of(["predict", "--model", str(tmp_path), "--onset", "a.png", "--apex", "b.png"], capsys)
    assert "model file not found" in message


def test_error_image_without_face(model_run, tmp_path, capsys):
    run_dir, _ = model_run
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    message = error_of(["predict", "--model", str(run_dir), "--onset", str(blank), "--apex", str(blank)], capsys)
    assert f"no face found in onset image {blank}" in message
    assert "predict/predict/pair" not in message


def test_error_clip_without_face(model_run, tmp_path, capsys):
    run_dir, _ = model_run
    clip = tmp_path / "clip"
    clip.mkdir()
    for index in range(2):
        cv2.imwrite(str(clip / f"img{index}.png"), np.full((200, 200, 3), 128 + index, np.uint8))
    message = error_of(["predict", "--model", str(run_dir), "--clip", str(clip), "--apex-index", "1"], capsys)
    assert f"no face found in the onset (first frame) of clip {clip}" in message


def test_error_single_frame_video(model_run, tmp_path, capsys):
    run_dir, _ = model_run
    video = write_video(tmp_path / "one.avi", moving_square(1, apex=0))
    message = error_of(["predict", "--model", str(run_dir), "--clip", str(video)], capsys)
    assert "has 1 frame" in message


def test_error_folder_without_images(model_run, tmp_path, capsys):
    run_dir, _ = model_run
    message = error_of(["predict", "--model", str(run_dir), "--clip", str(tmp_path)], capsys)
    assert "no image files" in message


def test_error_missing_image(model_run, tmp_path, capsys):
    run_dir, sample = model_run
    message = error_of(["predict", "--model", str(run_dir), "--onset", str(tmp_path / "x.jpg"), "--apex", str(sample.apex)], capsys)
    assert "image not found" in message


def test_error_apex_index_out_of_range(model_run, tmp_path, capsys):
    run_dir, sample = model_run
    clip = tmp_path / "clip"
    clip.mkdir()
    for name in ("0.png", "1.png"):
        (clip / name).write_bytes(sample.onset.read_bytes())
    message = error_of(["predict", "--model", str(run_dir), "--clip", str(clip), "--apex-index", "5"], capsys)
    assert "out of range" in message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--onset", "a.png"], "--apex is missing"),
        ([], "nothing to classify"),
        (["--onset", "a.png", "--apex", "b.png", "--clip", "c"], "not both"),
        (["--clip", "c", "--onset", "a.png"], "not both"),
    ],
)
def test_error_input_options(model_run, capsys, extra, expected):
    run_dir, _ = model_run
    assert expected in error_of(["predict", "--model", str(run_dir), *extra], capsys)
