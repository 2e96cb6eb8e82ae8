"""Write the key names and shapes of torchvision's resnet18, plus reference outputs, to JSON.

Run once in a separate environment that has torchvision (it cannot be installed beside
the project's torch):

    python3 -m venv /tmp/tvenv
    /tmp/tvenv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/tvenv/bin/python scripts/dump_torchvision_keys.py tests/fixtures/torchvision_resnet18_keys.json

Besides the listing, the network is filled with deterministic weights that involve no
random generator (see ``fill_deterministic``) and run on a deterministic image. A few of
its outputs are stored, so the project's ResNet-18 can be checked against torchvision
numerically. ``tests/test_nn_resnet.py`` repeats the same fill.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
import torchvision


def fill_deterministic(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Return a copy of ``state`` with every float tensor set from a sine of its element index."""
    filled = {}
    for position, (name, tensor) in enumerate(state.items()):
        if not tensor.is_floating_point():
            filled[name] = tensor.clone()
            continue
        wave = torch.sin(torch.arange(tensor.numel(), dtype=torch.float64) * 0.37 + position).view(tensor.shape)
        if name.endswith("running_var"):
            value = 1.0 + 0.5 * wave.square()
        elif tensor.dim() > 1:
            fan_in = tensor[0].numel()
            value = wave * math.sqrt(2.0 / fan_in)
        elif name.endswith("weight"):
            value = 1.0 + 0.1 * wave
        else:
            value = 0.1 * wave
        filled[name] = value.to(tensor.dtype)
    return filled


def reference_image() -> torch.Tensor:
    """Build a deterministic (1, 3, 64, 64) image with values in [-1, 1]."""
    index = torch.arange(3 * 64 * 64, dtype=torch.float64)
    return torch.sin(index * 0.013).view(1, 3, 64, 64).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="JSON file to write")
    args = parser.parse_args()

    model = torchvision.models.resnet18(weights=None)
    state = model.state_dict()
    model.load_state_dict(fill_deterministic(state))
    model.eval()

    captured = {}
    model.layer3.register_forward_hook(lambda module, inputs, output: captured.update(layer3=output))
    with torch.no_grad():
        logits = model(reference_image())
    layer3_pooled = torch.nn.functional.adaptive_avg_pool2d(captured["layer3"], 2).flatten()

    reference = {
        "logits_first_16": [round(v, 6) for v in logits[0, :16].tolist()],
        "layer3_pool2_first_16": [round(v, 6) for v in layer3_pooled[:16].tolist()],
        "layer3_pool2_sum": round(float(layer3_pooled.sum()), 6),
    }
    versions = f' "torch": {json.dumps(torch.__version__)},\n "torchvision": {json.dumps(torchvision.__version__)},\n'
    reference_lines = [f"  {json.dumps(name)}: {json.dumps(value)}" for name, value in reference.items()]
    key_lines = [f"  {json.dumps(name)}: {json.dumps(list(tensor.shape))}" for name, tensor in state.items()]

    # One entry per line keeps the fixture readable and its diffs small.
    text = (
        "{\n" + versions
        + ' "reference": {\n' + ",\n".join(reference_lines) + "\n },\n"
        + ' "keys": {\n' + ",\n".join(key_lines) + "\n }\n}\n"
    )
    json.loads(text)
    json.loads(text)
    args.output.write_text(text)
    print(f"wrote {len(state)} keys to {args.output}")


if __name__ == "__main__":
    main()
