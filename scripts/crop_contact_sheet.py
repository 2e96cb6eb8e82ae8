"""Check landmark detection on real faces, time it, and draw a contact sheet of crops.

Runs the dlib detector and 68-point predictor on the ten CASME II frames and the 102 FRLL
neutral faces of the shared data folder. Prints a Markdown table: faces found, time per
image, and eye-centre error against the pupils of the FRLL templates. Writes a contact
sheet of the FRLL crops with their landmarks. Only FRLL images (CC BY 4.0) go into the
figure; the CASME II crops are written to ``--private-dir`` when given, for viewing only.

Usage:
    python scripts/crop_contact_sheet.py --data ../shared/data --figure docs/figures/crops_frll.png
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from uamrn.face.crop import crop_pair
from uamrn.face.detect import FaceNotFoundError, detect_landmarks

THUMB = 96
COLUMNS = 17


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise ValueError(f"cannot decode {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def pupils(tem: Path) -> np.ndarray:
    lines = tem.read_text().splitlines()
    return np.array([[float(v) for v in lines[i].split()] for i in (1, 2)])


def measure(paths: list[Path], label: str) -> tuple[list[dict], list[np.ndarray]]:
    """Detect, time and crop every image; return per-image rows and crops with landmarks drawn."""
    rows, crops = [], []
    for path in tqdm(paths, desc=label, unit="image"):
        image = read_rgb(path)
        start = time.perf_counter()
        try:
            found = detect_landmarks(image, name=path.name)
        except FaceNotFoundError:
            rows.append({"image": path.name, "found": False, "seconds": time.perf_counter() - start})
            continue
        seconds = time.perf_counter() - start

        row = {"image": path.name, "found": True, "seconds": seconds}
        tem = path.with_suffix(".tem")
        if tem.is_file():
            truth = pupils(tem)
            eyes = np.stack([found.points[36:42].mean(axis=0), found.points[42:48].mean(axis=0)])
            row["eye_error"] = float(np.linalg.norm(eyes - truth, axis=1).max() / np.linalg.norm(truth[1] - truth[0]))
        rows.append(row)

        marked = image.copy()
        radius = max(1, round(max(image.shape[:2]) / 250))
        for x, y in found.points:
            cv2.circle(marked, (int(round(x)), int(round(y))), radius, (0, 255, 0), -1)
        crops.append(crop_pair(marked, marked, landmarks=found).onset)
    return rows, crops


def contact_sheet(crops: list[np.ndarray]) -> np.ndarray:
    thumbs = [cv2.resize(c, (THUMB, THUMB), interpolation=cv2.INTER_AREA) for c in crops]
    while len(thumbs) % COLUMNS:
        thumbs.append(np.full_like(thumbs[0], 255))
    rows = [np.hstack(thumbs[i : i + COLUMNS]) for i in range(0, len(thumbs), COLUMNS)]
    return np.vstack(rows)


def table_row(name: str, rows: list[dict]) -> str:
    found = [r for r in rows if r["found"]]
    times = [r["seconds"] * 1000 for r in found]
    errors = [r["eye_error"] for r in found if "eye_error" in r]
    error = f"{statistics.mean(errors):.3f} / {max(errors):.3f}" if errors else "n/a"
    return (f"| {name} | {len(found)} / {len(rows)} | {statistics.median(times):.0f} | "
            f"{statistics.mean(times):.0f} | {max(times):.0f} | {error} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="shared data folder")
    parser.add_argument("--figure", type=Path, default=Path("docs/figures/crops_frll.png"), help="FRLL contact sheet PNG")
    parser.add_argument("--private-dir", type=Path, default=None, help="folder for the CASME II contact sheet (not shipped)")
    args = parser.parse_args()

    detect_landmarks(read_rgb(args.data / "casme2_frames/001.jpg"))  # load the models before timing

    casme_rows, casme_crops = measure(sorted((args.data / "casme2_frames").glob("*.jpg")), "casme2_frames")
    frll_rows, frll_crops = measure(sorted((args.data / "frll_london/neutral_front").glob("*.jpg")), "frll neutral")

    args.figure.parent.mkdir(parents=True, exist_ok=True)
    # A 256-colour palette keeps the figure small enough to ship in the repository.
    Image.fromarray(contact_sheet(frll_crops)).quantize(colors=256).save(args.figure, optimize=True)
    if args.private_dir is not None:
        args.private_dir.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.private_dir / "crops_casme2.png"), cv2.cvtColor(contact_sheet(casme_crops), cv2.COLOR_RGB2BGR))

    print("| images | faces found | median ms | mean ms | max ms | eye error mean / max |")
    print("|---|---|---|---|---|---|")
    print(table_row("CASME II frames, 280x340 grey", casme_rows))
    print(table_row("FRLL neutral, 1350x1350 RGB", frll_rows))
    missed = [r["image"] for r in casme_rows + frll_rows if not r["found"]]
    print(f"\nno face: {', '.join(missed) if missed else 'none'}")


if __name__ == "__main__":
    main()
