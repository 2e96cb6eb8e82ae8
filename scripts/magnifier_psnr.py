"""Compare the learned magnifier with the reference frames of the CASME II example pair.

Runs ``LearnedMagnifier`` on the onset/apex pair at the 32 factors of the references
(``numpy.linspace(2, 12, 32)``, files named ``round(a, 2)``), and prints a Markdown table of
PSNR per factor against each reference JPEG. As a noise floor it also gives the PSNR of our
own frame after a JPEG round trip at the references' settings (Pillow, quality 75), because
that much difference remains even for a perfect reimplementation. It also times the linear
and learned magnifiers in frames per second on this machine.

With ``--variants`` it instead compares preprocessing choices (channel order, resize filter,
factor offset, rounding) at the first and last factor, which is how the choices in
``uamrn.magnify.learned`` were settled.

Usage:
    python scripts/magnifier_psnr.py [--data ../shared/data] [--threads 2] [--csv out.csv]
    python scripts/magnifier_psnr.py --variants
"""

from __future__ import annotations

import argparse
import io
import os
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from PIL import Image

from uamrn.magnify.learned import LearnedMagnifier, MagnificationNet, load_magnification_net
from uamrn.magnify.linear import magnify_linear

PAIR = "casme2_sub01_EP02_01f"
REPO = Path(__file__).resolve().parents[1]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def jpeg_round_trip(image: np.ndarray, quality: int = 75) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def read_rgb(path: Path) -> np.ndarray:
    if not path.is_file():
        raise SystemExit(f"file not found: {path}; set --data to the folder that contains {PAIR}")
    return np.asarray(Image.open(path).convert("RGB"))


def _resize(image: np.ndarray, method: str) -> np.ndarray:
    if method.startswith("pil-"):
        filters = {"pil-bilinear": Image.Resampling.BILINEAR, "pil-bicubic": Image.Resampling.BICUBIC}
        return np.asarray(Image.fromarray(image).resize((384, 384), filters[method]))
    flags = {"cv2-linear": cv2.INTER_LINEAR, "cv2-cubic": cv2.INTER_CUBIC, "cv2-lanczos4": cv2.INTER_LANCZOS4}
    return cv2.resize(image, (384, 384), interpolation=flags[method])


def run_variant(
    net: MagnificationNet,
    onset: np.ndarray,
    apex: np.ndarray,
    factors: np.ndarray,
    order: str = "rgb",
    resize: str = "pil-bilinear",
    factor_offset: float = 0.0,
    rounding: str = "round",
) -> np.ndarray:
    """Run the network with one preprocessing choice and return RGB uint8 frames (L, 384, 384, 3)."""

    def to_tensor(image: np.ndarray) -> torch.Tensor:
        image = _resize(image[:, :, ::-1].copy() if order == "bgr" else image, resize)
        return torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1.0

    with torch.inference_mode():
        output = net(to_tensor(onset), to_tensor(apex), torch.tensor(factors + factor_offset, dtype=torch.float32))
    values = (output.permute(0, 2, 3, 1).numpy() + 1.0) * 127.5
    values = np.rint(values) if rounding == "round" else np.floor(values)
    frames = np.clip(values, 0, 255).astype(np.uint8)
    return frames[..., ::-1] if order == "bgr" else frames


VARIANTS = {
    "chosen: RGB, Pillow bilinear, factor as given, rounded": {},
    "OpenCV bilinear resize": {"resize": "cv2-linear"},
    "OpenCV bicubic resize": {"resize": "cv2-cubic"},
    "OpenCV Lanczos-4 resize": {"resize": "cv2-lanczos4"},
    "Pillow bicubic resize": {"resize": "pil-bicubic"},
    "BGR channel order into the network": {"order": "bgr"},
    "factor + 1 passed to the network": {"factor_offset": 1.0},
    "truncated instead of rounded output": {"rounding": "floor"},
}


def compare_variants(pair: Path, onset: np.ndarray, apex: np.ndarray) -> None:
    factors = np.array([2.0, 12.0])
    references = [read_rgb(pair / "learned_magnifier" / "output" / f"{a}.jpg") for a in factors]
    net = load_magnification_net(pair / "learned_magnifier" / "learning_based_mag.pth.tar")
    print("| preprocessing | PSNR at 2 (dB) | PSNR at 12 (dB) |")
    print("|---|---:|---:|")
    for name, options in VARIANTS.items():
        frames = run_variant(net, onset, apex, factors, **options)
        first, last = (psnr(f, r) for f, r in zip(frames, references))
        print(f"| {name} | {first:.2f} | {last:.2f} |")
    swapped = run_variant(net, onset, apex, factors)[..., ::-1]
    print(f"| chosen, output channels read as BGR | {psnr(swapped[0], references[0]):.2f} | {psnr(swapped[1], references[1]):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("UAMRN_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data, help=f"folder that contains {PAIR} (default $UAMRN_SHARED_DATA or ../shared/data)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="torch device for the learned magnifier")
    parser.add_argument("--csv", type=Path, help="also write the table as CSV here")
    parser.add_argument("--variants", action="store_true", help="compare preprocessing choices instead")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    pair = args.data / PAIR
    onset = read_rgb(pair / "onset_reg_img46.jpg")
    apex = read_rgb(pair / "apex_reg_img59.jpg")
    if args.variants:
        compare_variants(pair, onset, apex)
        return

    factors = np.linspace(2, 12, 32)
    references = [read_rgb(pair / "learned_magnifier" / "output" / f"{round(a, 2)}.jpg") for a in factors]

    magnifier = LearnedMagnifier.from_file(
        pair / "learned_magnifier" / "learning_based_mag.pth.tar", device=args.device
    )
    started = time.perf_counter()
    frames = magnifier.magnify(onset, apex, factors, resize_back=False)
    learned_fps = len(frames) / (time.perf_counter() - started)

    started = time.perf_counter()
    linear = magnify_linear(onset, apex, factors)
    linear_fps = len(linear) / (time.perf_counter() - started)

    table = pd.DataFrame(
        {
            "factor": [round(a, 2) for a in factors],
            "psnr_db": [psnr(f, r) for f, r in zip(frames, references)],
            "jpeg_floor_db": [psnr(jpeg_round_trip(f), f) for f in frames],
        }
    )
    print("| factor | PSNR (dB) | JPEG floor (dB) |")
    print("|---:|---:|---:|")
    for row in table.itertuples():
        print(f"| {row.factor:g} | {row.psnr_db:.2f} | {row.jpeg_floor_db:.2f} |")
    print(
        f"\nmin PSNR {table.psnr_db.min():.2f} dB at factor {table.factor[table.psnr_db.idxmin()]}, "
        f"mean {table.psnr_db.mean():.2f} dB"
    )
    print(
        f"learned: {learned_fps:.2f} frames/s at 384x384 on {args.device} ({args.threads} threads); "
        f"linear: {linear_fps:.0f} frames/s at {onset.shape[1]}x{onset.shape[0]}"
    )
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
