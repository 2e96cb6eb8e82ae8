"""`uamrn magnify`: rebuild the magnified sequence of one onset/apex pair as PNG files."""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
from pathlib import Path

import cv2
import numpy as np

from uamrn.cli import UsageError
from uamrn.config import SequenceConfig
from uamrn.data.flow import export_flow, read_frame, save_flow_image
from uamrn.magnify.factors import MAX_FACTORS, parse_factors
from uamrn.magnify.linear import magnify_linear

logger = logging.getLogger(__name__)

_DEFAULTS = SequenceConfig()
DEFAULT_FACTORS = f"{_DEFAULTS.factor_start:g}:{_DEFAULTS.factor_stop:g}:{_DEFAULTS.length}"
SHEET_COLUMNS = 8


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "magnify",
        help="magnify an onset/apex pair into a sequence of PNG frames",
        description=(
            "Magnify the onset-to-apex change of one pair, one frame per amplification factor. "
            "Writes factor_<a>.png per factor and contact_sheet.png to --out."
        ),
    )
    parser.add_argument("onset", type=Path, help="onset frame image (any format OpenCV reads)")
    parser.add_argument("apex", type=Path, help="apex frame image, same size as the onset")
    parser.add_argument("--out", type=Path, required=True, help="output folder, created when missing")
    parser.add_argument(
        "--method",
        choices=("linear", "learned"),
        default="linear",
        help="linear: onset + (1 + a) * (apex - onset); learned: the network of Oh et al. (needs --weights)",
    )
    parser.add_argument("--weights", type=Path, help="checkpoint of the learned magnifier (.pth or .pth.tar)")
    parser.add_argument(
        "--factors",
        default=DEFAULT_FACTORS,
        help=f"amplification factors as START:STOP:COUNT, evenly spaced, with 0 <= START <= STOP and "
        f"COUNT at most {MAX_FACTORS} (default {DEFAULT_FACTORS})",
    )
    parser.add_argument(
        "--flow",
        action="store_true",
        help="also write flow.png: onset-to-apex TV-L1 flow as a 28x28 composite-style image (u, v, strain)",
    )
    parser.add_argument("--device", default="cpu", help="torch device for --method learned (default cpu)")
    parser.add_argument(
        "--network-size",
        type=int,
        default=384,
        help="side in pixels of the square that --method learned runs at; output is resized back (default 384)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is an existing file; pass a folder for the frames")
    factors = parse_factors(args.factors)
    magnifier = _build_magnifier(args)

    onset = read_frame(args.onset)
    apex = read_frame(args.apex)
    if onset.shape != apex.shape:
        raise UsageError(
            f"onset {args.onset} is {onset.shape[1]}x{onset.shape[0]} but apex {args.apex} is "
            f"{apex.shape[1]}x{apex.shape[0]}; crop or resize both frames to the same size"
        )

    started = time.perf_counter()
    frames = magnifier(onset, apex, factors)
    elapsed = max(time.perf_counter() - started, 1e-9)
    logger.info("%s magnifier: %d frames in %.2f s (%.1f frames/s)", args.method, len(frames), elapsed, len(frames) / elapsed)

    args.out.mkdir(parents=True, exist_ok=True)
    for factor, frame in zip(factors, frames):
        _write_png(args.out / frame_name(factor), frame)
    sheet = write_contact_sheet(args.out / "contact_sheet.png", onset, apex, frames, factors, args.method)

    print(f"wrote {len(frames)} frames ({args.method}, factors {factors[0]:g}..{factors[-1]:g}) to {args.out}")
    print(f"contact sheet: {sheet}")
    if args.flow:
        flow_path = save_flow_image(args.out / "flow.png", export_flow(onset, apex))
        print(f"flow image (u, v, strain): {flow_path}")
    return 0


def frame_name(factor: float) -> str:
    """File name of the frame for one amplification factor, e.g. ``factor_02.000.png``."""
    return f"factor_{factor:06.3f}.png"


def _build_magnifier(args: argparse.Namespace):
    if args.method == "linear":
        if args.weights is not None:
            raise UsageError("--weights applies only to --method learned; drop it or add --method learned")
        return magnify_linear

    if args.weights is None:
        raise UsageError(
            "--method learned needs --weights FILE, a checkpoint of the learning-based magnifier "
            "(for example learning_based_mag.pth.tar)"
        )
    from uamrn.magnify.learned import LearnedMagnifier  # torch loads only when needed

    return LearnedMagnifier.from_file(args.weights, device=args.device, network_size=args.network_size).magnify


def write_contact_sheet(
    path: Path,
    onset: np.ndarray,
    apex: np.ndarray,
    frames: np.ndarray,
    factors: np.ndarray,
    title: str,
) -> Path:
    """Draw onset, apex and every magnified frame in a labelled grid and save it as PNG.

    Args:
        path: Output PNG path; written atomically.
        onset: Onset frame, uint8 RGB (H, W, 3).
        apex: Apex frame, same shape.
        frames: Magnified frames, uint8 (L, H, W, 3).
        factors: The L amplification factors, used as tile labels.
        title: Figure title (the method name).

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tiles = [("onset", onset), ("apex", apex)] + [(f"a = {a:.2f}", f) for a, f in zip(factors, frames)]
    columns = min(SHEET_COLUMNS, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    aspect = onset.shape[0] / onset.shape[1]

    # Each row gets 0.3 inch above its tiles for the factor labels.
    figure = Figure(figsize=(1.6 * columns, (1.6 * aspect + 0.3) * rows + 0.4))
    FigureCanvasAgg(figure)
    figure.suptitle(f"{title} magnification")
    for index, (label, image) in enumerate(tiles):
        axis = figure.add_subplot(rows, columns, index + 1)
        axis.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
        axis.set_title(label, fontsize=8)
        axis.axis("off")
    figure.tight_layout()

    temporary = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temporary, dpi=100)
    os.replace(temporary, path)
    return path


def _write_png(path: Path, rgb: np.ndarray) -> None:
    temporary = path.with_name(f".{path.name}.tmp.png")
    if not cv2.imwrite(str(temporary), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise ValueError(f"cannot write image {path}; check that the folder is writable")
    os.replace(temporary, path)
