"""Draw the contact sheets in ``docs/figures`` from a synthetic micro-smile on an FRLL face.

CASME II frames may not be redistributed, so the figures use face 001 of the Face Research
Lab London Set (CC BY 4.0; DeBruine & Jones 2017, doi:10.6084/m9.figshare.5047666.v5).
The neutral photo is cropped to 224 x 224 with the project's landmark crop. The apex is the
same crop with both mouth corners moved by a smooth displacement field (1 px up and 0.5 px
outwards at the corners, Gaussian fall-off with sigma 8 px), a motion of micro-expression
size. Both magnifiers then run through ``uamrn magnify``; the sheets show 12 factors from
2 to 13 to keep the PNG files small, and the single frames show factor 13.

Usage:
    python scripts/magnifier_figures.py --weights learning_based_mag.pth.tar [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from uamrn.cli import main as uamrn_main
from uamrn.data.flow import read_frame
from uamrn.face.crop import crop_pair
from uamrn.face.detect import detect_landmarks

REPO = Path(__file__).resolve().parents[1]
MOUTH_CORNERS = (48, 54)  # iBUG 68-point indices of the two mouth corners


def micro_smile(face: np.ndarray, lift_px: float = 1.0, spread_px: float = 0.5, sigma: float = 8.0) -> np.ndarray:
    """Move both mouth corners of a face crop up by ``lift_px`` and outwards by ``spread_px``, with Gaussian fall-off."""
    points = detect_landmarks(face, name="FRLL 001 crop").points
    height, width = face.shape[:2]
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
    shift_x = np.zeros_like(grid_x)
    shift_y = np.zeros_like(grid_y)
    centre_x = points[:, 0].mean()
    for index in MOUTH_CORNERS:
        corner_x, corner_y = points[index]
        weight = np.exp(-((grid_x - corner_x) ** 2 + (grid_y - corner_y) ** 2) / (2 * sigma**2))
        shift_x += weight * spread_px * np.sign(corner_x - centre_x)
        shift_y -= weight * lift_px

    # remap samples the source, so the apex at p shows the onset at p - shift.
    return cv2.remap(face, grid_x - shift_x, grid_y - shift_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("UAMRN_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data, help="folder that contains frll_london")
    parser.add_argument("--weights", type=Path, required=True, help="learned magnifier checkpoint")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "figures", help="figure folder")
    parser.add_argument("--factors", default="2:13:12", help="START:STOP:COUNT for the contact sheets")
    args = parser.parse_args()

    neutral = read_frame(args.data / "frll_london" / "neutral_front" / "001_03.jpg")
    onset = crop_pair(neutral, neutral, size=224, name="FRLL 001").onset
    apex = micro_smile(onset)

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        cv2.imwrite(str(work / "onset.png"), cv2.cvtColor(onset, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(work / "apex.png"), cv2.cvtColor(apex, cv2.COLOR_RGB2BGR))
        for method in ("linear", "learned"):
            command = ["magnify", str(work / "onset.png"), str(work / "apex.png"), "--out", str(work / method)]
            command += ["--factors", args.factors]
            command += ["--method", method] + (["--weights", str(args.weights)] if method == "learned" else [])
            if uamrn_main(command) != 0:
                raise SystemExit(f"uamrn magnify --method {method} failed")
            args.out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(work / method / "contact_sheet.png", args.out / f"magnify_{method}_frll001.png")
        shutil.copyfile(work / "linear" / "factor_13.000.png", args.out / "magnify_linear_frll001_a13.png")
        shutil.copyfile(work / "learned" / "factor_13.000.png", args.out / "magnify_learned_frll001_a13.png")


if __name__ == "__main__":
    main()
