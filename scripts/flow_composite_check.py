"""Compare ``export_flow`` with the MEGC2019 composite's own flow images.

Prints two Markdown tables. The first gives per-channel statistics of all composite flow
images (range, median of per-image medians). The second gives the Pearson correlation
per channel between our export of the CASME II pair sub01/EP02_01f and the composite image
of the same clip, for the chosen processing order and two alternatives.

Usage:
    python scripts/flow_composite_check.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from uamrn.data.flow import export_flow, normalise_channel, optical_strain, read_frame, tvl1_flow

REPO = Path(__file__).resolve().parents[1]


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


def composite_statistics(folder: Path) -> None:
    paths = sorted(folder.glob("*.png"))
    if not paths:
        raise SystemExit(f"no PNG files in {folder}; set --data to the folder that contains megc2019")
    images = np.stack([np.asarray(Image.open(path).convert("RGB")) for path in paths]).reshape(len(paths), -1, 3)
    print(f"{len(paths)} composite flow images\n")
    print("| channel | every image spans 0..255 | median of per-image medians | mean |")
    print("|---|---|---:|---:|")
    for index, name in enumerate(("R", "G", "B")):
        channel = images[:, :, index]
        spans = bool((channel.min(axis=1) == 0).all() and (channel.max(axis=1) == 255).all())
        print(f"| {name} | {spans} | {np.median(np.median(channel, axis=1)):.0f} | {channel.mean():.1f} |")


def strain_at_full_resolution(onset: np.ndarray, apex: np.ndarray, size: int = 28) -> np.ndarray:
    flow = tvl1_flow(onset, apex)
    channels = (flow[:, :, 0], flow[:, :, 1], optical_strain(flow))
    return np.stack([normalise_channel(cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA)) for c in channels], -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("UAMRN_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data, help="folder that contains megc2019")
    args = parser.parse_args()

    composite_statistics(args.data / "megc2019" / "flow")

    pair = args.data / "casme2_sub01_EP02_01f"
    onset = read_frame(pair / "onset_reg_img46.jpg")
    apex = read_frame(pair / "apex_reg_img59.jpg")
    reference = np.asarray(Image.open(args.data / "megc2019" / "flow" / "sub01_EP02_01f .png").convert("RGB"))

    chosen = export_flow(onset, apex)
    candidates = {
        "chosen: resize flow, strain on 28x28 flow, normalise": chosen,
        "strain at full resolution, then resize": strain_at_full_resolution(onset, apex),
        "chosen with u and v swapped": chosen[:, :, [1, 0, 2]],
    }
    print("\n| export of sub01/EP02_01f | r(R) | r(G) | r(B) |")
    print("|---|---:|---:|---:|")
    for name, image in candidates.items():
        r = [pearson(image[:, :, c], reference[:, :, c]) for c in range(3)]
        print(f"| {name} | {r[0]:.3f} | {r[1]:.3f} | {r[2]:.3f} |")


if __name__ == "__main__":
    main()
