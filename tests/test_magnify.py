"""Linear magnifier, factor parsing and the ``uamrn magnify`` command."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from uamrn.cli import main
from uamrn.config import SequenceConfig
from uamrn.magnify import check_factors, magnify_linear, parse_factors


def _pair(shape=(6, 7, 3)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    onset = rng.integers(60, 200, size=shape, dtype=np.uint8)
    apex = np.clip(onset.astype(int) + rng.integers(-8, 9, size=shape), 0, 255).astype(np.uint8)
    return onset, apex


def test_linear_shape_and_dtype():
    onset, apex = _pair()
    frames = magnify_linear(onset, apex, np.linspace(2, 13, 32))
    assert frames.shape == (32, 6, 7, 3)
    assert frames.dtype == np.uint8


def test_linear_formula_signed():
    onset = np.full((2, 2, 3), 100, np.uint8)
    apex = onset.copy()
    apex[0, 0] = 110
    apex[1, 1] = 90
    frames = magnify_linear(onset, apex, [0.0, 1.0, 2.0])
    assert frames[:, 0, 0, 0].tolist() == [110, 120, 130]
    assert frames[:, 1, 1, 0].tolist() == [90, 80, 70]
    assert frames[:, 0, 1, 0].tolist() == [100, 100, 100]


def test_linear_matches_float_reference():
    onset, apex = _pair()
    factors = [2.0, 5.5, 13.0]
    expected = [
        np.clip(np.rint(onset.astype(float) + (1 + a) * (apex.astype(float) - onset)), 0, 255)
        for a in factors
    ]
    assert np.array_equal(magnify_linear(onset, apex, factors), np.stack(expected).astype(np.uint8))


def test_linear_clips_to_range():
    onset = np.array([[[10, 250, 128]]], np.uint8)
    apex = np.array([[[0, 255, 128]]], np.uint8)
    frames = magnify_linear(onset, apex, [20.0])
    assert frames[0, 0, 0].tolist() == [0, 255, 128]


def test_linear_zero_factor_gives_apex():
    onset, apex = _pair()
    assert np.array_equal(magnify_linear(onset, apex, [0.0])[0], apex)


def test_linear_grey_input():
    onset, apex = _pair((5, 4))
    assert magnify_linear(onset, apex, [2.0, 3.0]).shape == (2, 5, 4)


def test_linear_rejects_shape_mismatch():
    onset, _ = _pair((6, 7, 3))
    _, apex = _pair((6, 8, 3))
    with pytest.raises(ValueError, match="differ in shape"):
        magnify_linear(onset, apex, [2.0])


def test_linear_rejects_float_image():
    onset, apex = _pair()
    with pytest.raises(ValueError, match="onset frame must be uint8"):
        magnify_linear(onset.astype(np.float32), apex, [2.0])


def test_linear_rejects_empty_factors():
    onset, apex = _pair()
    with pytest.raises(ValueError, match="non-empty"):
        magnify_linear(onset, apex, [])


def test_factors_rejects_nan():
    with pytest.raises(ValueError, match="finite"):
        check_factors([2.0, float("nan")])


def test_parse_factors_linspace():
    assert np.allclose(parse_factors("2:12:32"), np.linspace(2, 12, 32))


def test_parse_factors_single():
    assert parse_factors("3:9:1").tolist() == [3.0]


@pytest.mark.parametrize("text", ["2:13", "a:13:32", "2:13:x", "2:13:0", "2:inf:4", "2:13:3.5", "2:1:5", "-5:-1:3", "1:2:1025"])
def test_parse_factors_rejects(text):
    with pytest.raises(ValueError, match="invalid factors"):
        parse_factors(text)


def test_parse_factors_zero_start():
    assert parse_factors("0:2:3").tolist() == [0.0, 1.0, 2.0]


def test_config_rejects_negative_factor():
    with pytest.raises(ValueError, match="factor_start"):
        SequenceConfig(factor_start=-1.0)


# The `uamrn magnify` command.


def _write_pair(folder: Path, onset_shape=(40, 32, 3), apex_shape=(40, 32, 3)) -> tuple[Path, Path]:
    onset, _ = _pair(onset_shape)
    _, apex = _pair(apex_shape)
    onset_path, apex_path = folder / "onset.png", folder / "apex.png"
    cv2.imwrite(str(onset_path), cv2.cvtColor(onset, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(apex_path), cv2.cvtColor(apex, cv2.COLOR_RGB2BGR))
    return onset_path, apex_path


def _read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_command_writes_frames(tmp_path):
    onset_path, apex_path = _write_pair(tmp_path)
    out = tmp_path / "out"
    assert main(["magnify", str(onset_path), str(apex_path), "--out", str(out), "--factors", "2:4:3"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["contact_sheet.png", "factor_02.000.png", "factor_03.000.png", "factor_04.000.png"]
    expected = magnify_linear(_read_rgb(onset_path), _read_rgb(apex_path), [3.0])[0]
    assert np.array_equal(_read_rgb(out / "factor_03.000.png"), expected)


def test_command_writes_flow(tmp_path):
    onset_path, apex_path = _write_pair(tmp_path)
    out = tmp_path / "out"
    assert main(["magnify", str(onset_path), str(apex_path), "--out", str(out), "--factors", "2:2:1", "--flow"]) == 0
    assert cv2.imread(str(out / "flow.png")).shape == (28, 28, 3)


def test_command_learned_without_weights(tmp_path, capsys):
    onset_path, apex_path = _write_pair(tmp_path)
    code = main(["magnify", str(onset_path), str(apex_path), "--out", str(tmp_path / "o"), "--method", "learned"])
    assert code == 2
    assert "needs --weights" in capsys.readouterr().err


def test_command_learned_missing_weights(tmp_path, capsys):
    onset_path, apex_path = _write_pair(tmp_path)
    args = ["magnify", str(onset_path), str(apex_path), "--out", str(tmp_path / "o"), "--method", "learned"]
    assert main(args + ["--weights", str(tmp_path / "absent.pth")]) == 2
    assert "absent.pth" in capsys.readouterr().err


def test_command_linear_rejects_weights(tmp_path, capsys):
    onset_path, apex_path = _write_pair(tmp_path)
    code = main(["magnify", str(onset_path), str(apex_path), "--out", str(tmp_path / "o"), "--weights", "w.pth"])
    assert code == 2
    assert "--weights applies only" in capsys.readouterr().err


def test_command_size_mismatch(tmp_path, capsys):
    onset_path, apex_path = _write_pair(tmp_path, apex_shape=(40, 30, 3))
    assert main(["magnify", str(onset_path), str(apex_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "onset.png is 32x40" in err
    assert "apex.png is 30x40" in err


def test_command_corrupt_image(tmp_path, capsys):
    onset_path, apex_path = _write_pair(tmp_path)
    onset_path.write_bytes(b"not an image")
    assert main(["magnify", str(onset_path), str(apex_path), "--out", str(tmp_path / "o")]) == 2
    assert "cannot decode image" in capsys.readouterr().err


def test_command_missing_image(tmp_path, capsys):
    _, apex_path = _write_pair(tmp_path)
    assert main(["magnify", str(tmp_path / "gone.png"), str(apex_path), "--out", str(tmp_path / "o")]) == 2
    assert "gone.png" in capsys.readouterr().err


def test_command_bad_factors(tmp_path, capsys):
    onset_path, apex_path = _write_pair(tmp_path)
    code = main(["magnify", str(onset_path), str(apex_path), "--out", str(tmp_path / "o"), "--factors", "2:x:3"])
    assert code == 2
    assert "invalid factors" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_command_learned_runs(tmp_path):
    torch = pytest.importorskip("torch")
    from uamrn.magnify.learned import MagnificationNet

    torch.manual_seed(0)
    weights = tmp_path / "mag.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in MagnificationNet().state_dict().items()}}, weights)
    onset_path, apex_path = _write_pair(tmp_path)
    out = tmp_path / "out"
    args = ["magnify", str(onset_path), str(apex_path), "--out", str(out), "--factors", "5:5:1"]
    assert main(args + ["--method", "learned", "--weights", str(weights), "--network-size", "32"]) == 0
    assert _read_rgb(out / "factor_05.000.png").shape == (40, 32, 3)


def test_command_out_is_file(tmp_path, capsys):
    onset_path, apex_path = _write_pair(tmp_path)
    assert main(["magnify", str(onset_path), str(apex_path), "--out", str(onset_path), "--factors", "2:4:3"]) == 2
    assert f"--out {onset_path} is an existing file" in capsys.readouterr().err
