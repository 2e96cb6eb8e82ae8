"""Run-directory files: atomic writes, the saved config and the model files of a fold.

Every file is written through ``uamrn.fileio.atomic_write``, so a run killed at any moment
leaves either the old file or the new one, never a truncated one.

A model directory contains ``model.safetensors`` (the network weights under ``model.`` and the
feature standardisation under ``features.mean`` / ``features.std``) and ``model.yaml`` (the
full run config, ``in_features``, class names and the test subject, if any).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from uamrn import __version__
from uamrn.config import RunConfig
from uamrn.fileio import atomic_write, atomic_write_text

__all__ = [
    "ModelMeta",
    "atomic_write",
    "check_run_config",
    "load_model",
    "save_model",
    "write_csv",
    "write_json",
    "write_text",
]

MODEL_WEIGHTS = "model.safetensors"
MODEL_META = "model.yaml"
CONFIG_FILE = "config.yaml"


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write_text(path, text)


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_csv(path: Path, table: pd.DataFrame) -> None:
    """Write ``table`` without its index to ``path`` atomically."""
    atomic_write(path, lambda temp: table.to_csv(temp, index=False))


def check_run_config(run_dir: Path, cfg: RunConfig) -> None:
    """Save ``cfg`` as ``RUN_DIR/config.yaml``, or check that it equals the one already there.

    Raises:
        ValueError: The run directory contains a run made with a different config, so resuming
            into it would mix results.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        write_text(path, cfg.to_yaml())
        return

    saved = RunConfig.from_yaml(path)
    if saved.model_dump(mode="json") != cfg.model_dump(mode="json"):
        differences = _config_differences(saved.model_dump(mode="json"), cfg.model_dump(mode="json"))
        raise ValueError(
            f"{run_dir} contains a run with a different config ({'; '.join(differences[:5])}); "
            "pass a new --out directory, or repeat the original options to resume that run"
        )


def _config_differences(saved: dict, current: dict, prefix: str = "") -> list[str]:
    differences = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences.extend(_config_differences(old, new, f"{prefix}{key}."))
        elif old != new:
            differences.append(f"{prefix}{key}: saved {old!r}, now {new!r}")
    return differences


@dataclass
class ModelMeta:
    """Metadata besides the weights that rebuilds a trained model and its inputs.

    Attributes:
        config: The full run config (data input, sequence, front end, model, training).
        in_features: Width F of the per-frame features the model reads.
        class_names: Class names indexed by the model's output.
        feature_mean: ``(F,)`` float32 mean of the training features, subtracted before the model.
        feature_std: ``(F,)`` float32 standard deviation of the training features (divided by).
        test_subject: The LOSO test subject the model never saw, or ``None`` for a model
            trained on every sample.
    """

    config: RunConfig
    in_features: int
    class_names: tuple[str, ...]
    feature_mean: np.ndarray
    feature_std: np.ndarray
    test_subject: str | None = None

    def standardize(self, features: np.ndarray) -> np.ndarray:
        """Standardise ``(..., F)`` features with the training statistics; returns float32."""
        return ((features - self.feature_mean) / self.feature_std).astype(np.float32)


def save_model(model_dir: Path, model: torch.nn.Module, meta: ModelMeta) -> None:
    """Write ``model.safetensors`` then ``model.yaml`` into ``model_dir``, each atomically."""
    model_dir = Path(model_dir)
    tensors = {f"model.{name}": value.detach().cpu().clone().contiguous() for name, value in model.state_dict().items()}
    tensors["features.mean"] = torch.from_numpy(np.ascontiguousarray(meta.feature_mean, dtype=np.float32))
    tensors["features.std"] = torch.from_numpy(np.ascontiguousarray(meta.feature_std, dtype=np.float32))
    atomic_write(model_dir / MODEL_WEIGHTS, lambda temp: save_file(tensors, str(temp)))

    description = {
        "uamrn_version": __version__,
        "test_subject": meta.test_subject,
        "in_features": meta.in_features,
        "class_names": list(meta.class_names),
        "weights": f"{MODEL_WEIGHTS}: network under 'model.', feature standardisation as 'features.mean', 'features.std'",
        "config": meta.config.model_dump(mode="json"),
    }
    write_text(model_dir / MODEL_META, yaml.safe_dump(description, sort_keys=False))


def load_model(model_dir: Path) -> tuple[torch.nn.Module, ModelMeta]:
    """Rebuild a trained UAMRN from ``model_dir`` (a fold folder or ``RUN_DIR/final``).

    Returns:
        The model in eval mode and its metadata (config, class names, standardisation).

    Raises:
        FileNotFoundError: ``model.yaml`` or ``model.safetensors`` is missing.
        ValueError: Either file cannot be read or does not match the other.
    """
    from uamrn.nn import UAMRN

    model_dir = Path(model_dir)
    meta_path, weights_path = model_dir / MODEL_META, model_dir / MODEL_WEIGHTS
    for path in (meta_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"model file not found: {path}; pass a folder written by uamrn evaluate "
                "(RUN_DIR/final or RUN_DIR/folds/<subject>)"
            )

    try:
        description = yaml.safe_load(meta_path.read_text())
        config = RunConfig.model_validate(description["config"])
        in_features = int(description["in_features"])
        class_names = tuple(description["class_names"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"cannot read model description {meta_path}: {err}; rerun uamrn evaluate to rewrite it") from err
    try:
        tensors = load_file(str(weights_path))
    except (OSError, SafetensorError) as err:
        raise ValueError(f"cannot read model weights {weights_path}: {err}; rerun uamrn evaluate to rewrite it") from err

    meta = ModelMeta(
        config=config,
        in_features=in_features,
        class_names=class_names,
        feature_mean=tensors.pop("features.mean").numpy(),
        feature_std=tensors.pop("features.std").numpy(),
        test_subject=description.get("test_subject"),
    )
    model = UAMRN(config.model, in_features, len(class_names))
    state = {name.removeprefix("model."): value for name, value in tensors.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"weights in {weights_path} do not match the model described in {meta_path}: {err}") from err
    model.eval()
    return model, meta
