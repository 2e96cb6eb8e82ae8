"""Per-sample features of the magnified sequence, computed once and cached on disk.

The front end is frozen, so the features of a sample depend only on its files and on the
settings that build the sequence; LOSO folds and later runs with the same settings reuse
them. A cache entry is ``<cache_dir>/<sha256 of file contents + settings>.npy``.

Inputs (``cfg.data.input``):

- ``flow``: the flow image magnified in the motion domain at every factor
  (:func:`uamrn.magnify.motion.magnify_flow`), each frame through the ``flow_pixels``
  front end, whatever ``cfg.frontend`` names.
- ``apex+flow``: the same flow tokens, each concatenated with the features of the apex face
  from the configured front end (one vector per sample, repeated over the sequence).
- ``frames``: the onset/apex sequence from :func:`uamrn.sequence.build_sequence` through
  the configured front end.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from uamrn import imageio
from uamrn.config import FrontEndConfig, RunConfig
from uamrn.data.sample import Sample, SampleSet
from uamrn.magnify.motion import magnify_flow
from uamrn.train.runio import atomic_write

__all__ = ["FEATURE_VERSION", "compute_features", "feature_key", "read_flow_image", "read_rgb", "standardize_features"]

logger = logging.getLogger(__name__)

FEATURE_VERSION = 1
"""Bumped whenever the feature computation changes, so stale cache entries are not reused."""

FLOW_FRONTEND = FrontEndConfig(name="flow_pixels")

FLOW_SIZE = 28
"""Side in pixels of a MEGC2019 composite flow image; the flow_pixels front end resizes to it."""

_SAMPLE_FIX = "the file is not a readable image; replace it or remove the sample"


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: OpenCV cannot decode the file.
    """
    return imageio.read_rgb(path, fix=_SAMPLE_FIX)


def read_flow_image(path: Path) -> np.ndarray:
    """Read a flow image: an 8-bit, 3-channel PNG with u, v and optical strain as R, G and B.

    Grey, RGBA and 16-bit files are rejected because OpenCV's colour conversion would turn
    them into a plausible but wrong flow (a grey image gives u = v = strain). A 3-channel image
    of another size than 28 x 28 is accepted with a warning, since the front end resizes it.

    Returns:
        ``(H, W, 3)`` uint8 array in the file's channel order as RGB.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file cannot be decoded, or is not 8-bit with 3 channels.
    """
    image = imageio.read_image(path, fix=_SAMPLE_FIX, flags=cv2.IMREAD_UNCHANGED)
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"flow image {path} has {channels} channel(s) of {image.dtype}; expected an 8-bit RGB image "
            f"(u, v and optical strain, {FLOW_SIZE}x{FLOW_SIZE} as in the MEGC2019 composite); "
            "re-export the flow, e.g. with uamrn magnify --flow, or remove the sample"
        )
    if image.shape[:2] != (FLOW_SIZE, FLOW_SIZE):
        logger.warning(
            "flow image %s is %dx%d, not %dx%d as in the MEGC2019 composite; it is resized",
            path, image.shape[1], image.shape[0], FLOW_SIZE, FLOW_SIZE,
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 to ``(N, 3, H, W)`` float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255.0)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as handle:
        np.save(handle, array)


def _settings(cfg: RunConfig) -> dict:
    settings = {
        "version": FEATURE_VERSION,
        "input": cfg.data.input,
        "sequence": cfg.sequence.model_dump(mode="json"),
    }
    if cfg.data.input != "flow":
        settings["frontend"] = cfg.frontend.model_dump(mode="json")
    return settings


def _file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _sample_files(sample: Sample, data_input: str) -> list[Path]:
    if data_input == "flow":
        named = {"flow": sample.flow}
    elif data_input == "apex+flow":
        named = {"flow": sample.flow, "apex": sample.apex}
    else:
        named = {"onset": sample.onset, "apex": sample.apex}
    absent = [name for name, path in named.items() if path is None]
    if absent:
        raise ValueError(
            f"sample {sample.key} has no {absent[0]} file, which input {data_input!r} needs; "
            "choose another --input for this dataset"
        )
    return [*named.values(), *sample.frames] if data_input == "frames" else list(named.values())


def feature_key(sample: Sample, cfg: RunConfig, settings_digest: str) -> str:
    """Return the cache key of one sample: a hash of its file contents and the feature settings."""
    digest = hashlib.sha256(settings_digest.encode())
    for path in _sample_files(sample, cfg.data.input):
        digest.update(_file_digest(path).encode())
    return digest.hexdigest()[:32]


class _Extractor:
    """Turns one sample into ``(L, F)`` float32 features; front ends are built once."""

    def __init__(self, cfg: RunConfig, cache_dir: Path | None):
        from uamrn.nn import build_frontend

        self.cfg = cfg
        self.cache_dir = cache_dir
        self.factors = cfg.sequence.factors()
        self.flow_frontend = build_frontend(FLOW_FRONTEND) if cfg.data.input in ("flow", "apex+flow") else None
        self.frontend = build_frontend(cfg.frontend) if cfg.data.input in ("apex+flow", "frames") else None

    @torch.no_grad()
    def __call__(self, sample: Sample) -> np.ndarray:
        if self.cfg.data.input == "frames":
            from uamrn.sequence import build_sequence

            sequence = build_sequence(sample, self.cfg, cache_dir=self.cache_dir)
            return self.frontend(_to_tensor(sequence)).numpy().astype(np.float32)

        flow = read_flow_image(sample.flow)
        unit_factor = min(self.factors) if self.cfg.sequence.flow_unit == "min" else max(self.factors)
        tokens = self.flow_frontend(_to_tensor(magnify_flow(flow, self.factors, unit_factor))).numpy()
        if self.cfg.data.input == "apex+flow":
            apex = self.frontend(_to_tensor(read_rgb(sample.apex)[None])).numpy()
            tokens = np.concatenate([tokens, np.repeat(apex, len(tokens), axis=0)], axis=1)
        return tokens.astype(np.float32)


def compute_features(sample_set: SampleSet, cfg: RunConfig, cache_dir: Path | None) -> np.ndarray:
    """Compute (or load from the cache) the features of every sample's magnified sequence.

    The front ends run with ``cfg.train.threads`` torch threads when that is set.

    Args:
        sample_set: The samples, in the order of the returned rows.
        cfg: Run config; ``data.input``, ``sequence`` and (for ``apex+flow`` and ``frames``)
            ``frontend`` decide the features.
        cache_dir: Folder of cached ``.npy`` entries, created when absent; ``None`` disables
            the cache.

    Returns:
        ``(N, L, F)`` float32, N samples, L = ``cfg.sequence.length`` frames, F features.

    Raises:
        FileNotFoundError: A sample file is missing.
        ValueError: A sample file cannot be decoded, or the input needs files the samples lack.
    """
    settings_digest = hashlib.sha256(json.dumps(_settings(cfg), sort_keys=True).encode()).hexdigest()
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)

    previous_threads = torch.get_num_threads()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    try:
        rows, hits = _load_or_compute(sample_set, cfg, cache_dir, settings_digest)
    finally:
        torch.set_num_threads(previous_threads)

    logger.info("features: %d samples, %d from the cache in %s", len(rows), hits, cache_dir)
    shapes = {row.shape for row in rows}
    if len(shapes) != 1:
        raise ValueError(f"samples gave features of different shapes {sorted(shapes)}; clear the cache {cache_dir} and rerun")
    return np.stack(rows).astype(np.float32, copy=False)


def _load_or_compute(
    sample_set: SampleSet, cfg: RunConfig, cache_dir: Path | None, settings_digest: str
) -> tuple[list[np.ndarray], int]:
    extractor = None
    rows, hits = [], 0
    for sample in tqdm(sample_set.samples, desc="features", unit="sample", leave=False):
        path = cache_dir / f"{feature_key(sample, cfg, settings_digest)}.npy" if cache_dir is not None else None
        if path is not None and path.is_file():
            rows.append(np.load(path))
            hits += 1
            continue

        if extractor is None:
            extractor = _Extractor(cfg, cache_dir)
        features = extractor(sample)
        if path is not None:
            atomic_write(path, lambda temp: _save_npy(temp, features))
        rows.append(features)
    return rows, hits


def standardize_features(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return per-feature mean and std over the ``(N, L, F)`` training features.

    Features that are constant over the training samples get a std of 1, so they stay
    finite after standardisation.

    Returns:
        ``(F,)`` float32 mean and ``(F,)`` float32 std.
    """
    flat = train.reshape(-1, train.shape[-1]).astype(np.float64)
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    std[std < 1e-6] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)
