"""Python API for inference with a trained UAMRN model.

Example::

    from uamrn.api import Predictor

    predictor = Predictor.load("runs/demo/magnified")    # RUN_DIR or a model folder
    result = predictor.predict("onset.jpg", "apex.jpg")  # paths or RGB uint8 arrays
    print(result.label, result.probabilities, result.gamma)

The onset and apex go through the same steps as in training, read from the saved run
config: face crop, magnified sequence, frozen front end, the training features'
standardisation, then the network in evaluation mode with ``return_attention=True``.
Models trained on optical flow (``data.input`` ``flow`` or ``apex+flow``) get the TV-L1 flow
of the pair computed first.
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from uamrn.data.sample import Sample, SampleSet
from uamrn.spotting import read_clip, read_image, spot_apex

__all__ = ["Prediction", "Predictor", "find_model_dir", "save_figure"]

log = logging.getLogger(__name__)

ImageInput = str | Path | np.ndarray


@dataclass
class Prediction:
    """Output of :meth:`Predictor.predict` for one onset/apex pair.

    Attributes:
        label: Predicted class name.
        label_index: Predicted class index into ``class_names``.
        class_names: Class names of the model, in output order.
        probabilities: Class name -> softmax probability.
        gamma: Per-sample uncertainty (epistemic plus aleatoric variance of the logits).
        attention: One (n_heads, L, L) float32 array per SSA block; rows are query frames.
        sequence: The frames the front end read, (L, H, W, 3) uint8 RGB, ordered by
            amplification factor: magnified face crops, or magnified flow images for flow
            models.
        factors: The L amplification factors.
        apex_index: Index of the apex frame within the clip, when the input was a clip.
    """

    label: str
    label_index: int
    class_names: tuple[str, ...]
    probabilities: dict[str, float]
    gamma: float
    attention: list[np.ndarray]
    sequence: np.ndarray
    factors: list[float]
    apex_index: int | None = None


def find_model_dir(path: Path) -> Path:
    """Resolve a run directory or a model folder to the folder that contains ``model.yaml``.

    A run directory resolves to its ``final/`` model (trained on every sample).

    Raises:
        FileNotFoundError: When the path does not exist or contains no model.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model not found: {path}; pass a run directory written by uamrn evaluate or uamrn demo")
    for candidate in (path, path / "final"):
        if (candidate / "model.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"model file not found: neither {path / 'model.yaml'} nor {path / 'final' / 'model.yaml'} exists; "
        "pass RUN_DIR (with final/), RUN_DIR/final or RUN_DIR/folds/<subject>"
    )


def _as_rgb(image: ImageInput, name: str) -> np.ndarray:
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(f"{name} image must be a uint8 (H, W) or (H, W, 3) RGB array, got {image.dtype} {image.shape}")
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image
    return read_image(Path(image))


@contextmanager
def _one_torch_thread():
    """Run torch on one thread, restoring the previous count afterwards.

    One sample is too small to gain from threads, and on a busy machine torch's worker
    threads made the model forward take 2.1 s instead of 0.011 s (2 shared CPU cores).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _write_png(path: Path, rgb: np.ndarray) -> Path:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"failed to write {path}")
    return path


class Predictor:
    """A trained model with its preprocessing, ready to classify onset/apex pairs.

    Args:
        model: The UAMRN network.
        meta: Its ``uamrn.train.runio.ModelMeta`` (run config, class names, standardisation).
        model_dir: The folder it was loaded from, for messages.
    """

    def __init__(self, model: torch.nn.Module, meta, model_dir: Path | None = None) -> None:
        self.model = model.eval()
        self.meta = meta
        self.model_dir = model_dir

    @classmethod
    def load(cls, path: str | Path) -> "Predictor":
        """Load the model of a run directory (its ``final/`` model) or of a model folder."""
        from uamrn.train.runio import load_model

        model_dir = find_model_dir(Path(path))
        model, meta = load_model(model_dir)
        log.info("loaded model %s (input %s, classes %s)", model_dir, meta.config.data.input, ", ".join(meta.class_names))
        return cls(model, meta, model_dir)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.meta.class_names)

    def predict(self, onset: ImageInput, apex: ImageInput) -> Prediction:
        """Classify one onset/apex pair.

        Args:
            onset: Onset frame: an image path or an RGB uint8 (H, W, 3) array.
            apex: Apex frame, same size as the onset.

        Returns:
            The prediction, with the attention of every block and the sequence read.

        Raises:
            FileNotFoundError: When an image file is missing.
            ValueError: When an image is invalid, the two differ in size, or no face is
                found in the onset (``uamrn.face.detect.FaceNotFoundError``).
        """
        onset_rgb, apex_rgb = _as_rgb(onset, "onset"), _as_rgb(apex, "apex")
        onset_name = f"onset image {onset}" if isinstance(onset, (str, Path)) else "the onset array"
        return self._predict_pair(onset_rgb, apex_rgb, onset_name)

    def _predict_pair(self, onset_rgb: np.ndarray, apex_rgb: np.ndarray, onset_name: str) -> Prediction:
        """Classify an RGB pair; ``onset_name`` names the onset in a no-face error."""
        from uamrn.face.detect import FaceNotFoundError

        if onset_rgb.shape != apex_rgb.shape:
            raise ValueError(f"onset {onset_rgb.shape} and apex {apex_rgb.shape} differ in size; give two frames of one clip")

        with _one_torch_thread(), tempfile.TemporaryDirectory(prefix="uamrn-predict-") as folder:
            try:
                features, sequence = self._features(onset_rgb, apex_rgb, Path(folder))
            except FaceNotFoundError:
                # The face is detected on the onset; the inner message names only the
                # temporary copy, so name the user's input instead.
                raise FaceNotFoundError(
                    f"no face found in {onset_name}; check that it shows a frontal face, or crop it closer to the face"
                ) from None
            return self._classify(features, sequence)

    def predict_clip(self, clip: str | Path, apex_index: int | None = None) -> Prediction:
        """Classify a clip: a folder of frames or a video, with the first frame as onset.

        Args:
            clip: Folder of frame images (natural file-name order) or a video file.
            apex_index: Index of the apex frame; spotted as the frame that differs most
                from the onset when not given.

        Raises:
            FileNotFoundError: When the clip is missing or the folder contains no image.
            ValueError: When the clip has fewer than two frames or ``apex_index`` is out of range.
        """
        frames = read_clip(Path(clip))
        if apex_index is None:
            apex_index = spot_apex(frames)
            log.info("spotted apex at frame %d of %d in %s", apex_index, len(frames), clip)
        elif not 1 <= apex_index < len(frames):
            raise ValueError(f"apex index {apex_index} is out of range for clip {clip} with {len(frames)} frames; give 1..{len(frames) - 1}")

        prediction = self._predict_pair(frames[0], frames[apex_index], f"the onset (first frame) of clip {clip}")
        prediction.apex_index = apex_index
        return prediction

    def _features(self, onset: np.ndarray, apex: np.ndarray, folder: Path) -> tuple[np.ndarray, np.ndarray]:
        """Compute (L, F) features and the (L, H, W, 3) frames they came from.

        The pair is written to ``folder`` and passed through the same feature code as in
        training, so inference cannot drift from it.
        """
        from uamrn.train.features import compute_features

        cfg = self.meta.config
        onset_path = _write_png(folder / "onset.png", onset)
        apex_path = _write_png(folder / "apex.png", apex)

        # Both steps share a cache in the temporary folder, so the face is detected once.
        cache_dir = folder / "cache"
        if cfg.data.input == "frames":
            from uamrn.sequence import build_sequence

            sample = Sample("predict", "predict", "pair", 0, onset=onset_path, apex=apex_path)
            sequence = build_sequence(sample, cfg, cache_dir=cache_dir)
        else:
            sample, sequence = self._flow_sample(onset, apex, folder)

        features = compute_features(SampleSet("predict", self.class_names, [sample]), cfg, cache_dir=cache_dir)[0]
        return features, sequence

    def _flow_sample(self, onset: np.ndarray, apex: np.ndarray, folder: Path) -> tuple[Sample, np.ndarray]:
        """Write the TV-L1 flow image and the cropped apex face of the pair for a flow model.

        The flow is exported like the MEGC2019 composite images (28 x 28; u, v and optical
        strain, each min-max normalised) from the face crops of onset and apex.
        """
        from uamrn.data.flow import export_flow
        from uamrn.face.crop import crop_pair
        from uamrn.magnify.motion import magnify_flow

        sequence_cfg = self.meta.config.sequence
        crop = crop_pair(onset, apex, size=224, rotate=sequence_cfg.align_eyes, margin=sequence_cfg.face_margin)
        flow = export_flow(crop.onset, crop.apex)
        flow_path = _write_png(folder / "flow.png", flow)
        apex_path = _write_png(folder / "apex_face.png", crop.apex)

        factors = sequence_cfg.factors()
        unit_factor = min(factors) if sequence_cfg.flow_unit == "min" else max(factors)
        sample = Sample("predict", "predict", "pair", 0, apex=apex_path, flow=flow_path)
        return sample, magnify_flow(flow, factors, unit_factor)

    @torch.no_grad()
    def _classify(self, features: np.ndarray, sequence: np.ndarray) -> Prediction:
        inputs = torch.from_numpy(self.meta.standardize(features[None]))
        output = self.model(inputs, return_attention=True)

        probabilities = torch.softmax(output.logits, dim=-1)[0].numpy()
        index = int(probabilities.argmax())
        attention = [weights[0].numpy().astype(np.float32) for weights in (output.attention or [])]
        return Prediction(
            label=self.class_names[index],
            label_index=index,
            class_names=self.class_names,
            probabilities={name: float(p) for name, p in zip(self.class_names, probabilities)},
            gamma=float(output.gamma[0]),
            attention=attention,
            sequence=sequence,
            factors=list(self.meta.config.sequence.factors()),
        )


def save_figure(prediction: Prediction, path: str | Path, title: str | None = None, columns: int = 8) -> Path:
    """Write a PNG with the magnified sequence, the attention maps and the class probabilities.

    The top row shows ``columns`` frames of the sequence, evenly spaced over the factors.
    The bottom row shows each SSA block's attention averaged over heads (query frames as
    rows, key frames as columns), then the class probabilities.

    Returns:
        The path written.
    """
    # A bare Figure renders with Agg and leaves pyplot's backend and state alone.
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    length = len(prediction.sequence)
    shown_indices = np.unique(np.linspace(0, length - 1, min(columns, length)).round().astype(int))
    n_blocks = len(prediction.attention)

    # Two independent rows, so the wide probability panel does not shift the frame columns.
    fig = Figure(figsize=(1.9 * max(len(shown_indices), n_blocks + 2), 4.8), layout="constrained")
    rows = fig.add_gridspec(2, 1, height_ratios=[1, 1.25])
    top = rows[0].subgridspec(1, len(shown_indices))
    bottom = rows[1].subgridspec(1, n_blocks + 1, width_ratios=[1] * n_blocks + [1.6])
    for column, index in enumerate(shown_indices):
        ax = fig.add_subplot(top[0, column])
        ax.imshow(prediction.sequence[index], interpolation="nearest")
        ax.set_title(f"a = {prediction.factors[index]:.1f}", fontsize=8)
        ax.axis("off")

    ticks = sorted({0, length // 2, length - 1})
    for block, weights in enumerate(prediction.attention):
        ax = fig.add_subplot(bottom[0, block])
        ax.imshow(weights.mean(axis=0), cmap="viridis", vmin=0.0)
        ax.set_title(f"block {block + 1} attention", fontsize=8)
        ax.set_xticks(ticks, [f"{prediction.factors[t]:.0f}" for t in ticks], fontsize=7)
        ax.set_yticks(ticks, [f"{prediction.factors[t]:.0f}" for t in ticks], fontsize=7)
        ax.set_xlabel("key factor a", fontsize=7)
        ax.set_ylabel("query factor a", fontsize=7)

    ax = fig.add_subplot(bottom[0, n_blocks])
    names = list(prediction.probabilities)
    ax.barh(names, [prediction.probabilities[name] for name in names], color="tab:blue")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.tick_params(labelsize=7)
    ax.set_xlabel("probability", fontsize=7)

    heading = f"{prediction.label} (p = {prediction.probabilities[prediction.label]:.2f}, gamma = {prediction.gamma:.3g})"
    fig.suptitle(f"{title}: {heading}" if title else heading, fontsize=10)
    fig.savefig(path, dpi=110)
    return path
