"""Run every benchmark section and write ``docs/benchmarks.md`` (raw numbers in ``docs/benchmarks.json``).

Usage::

    python bench/run_all.py            # everything (about 25 minutes on 2 quiet CPU cores)
    python bench/run_all.py --quick    # small sizes, one cold run each, no LOSO: a smoke test
                                       # written under the temp folder unless --out is given
    python bench/run_all.py --only a,b # rerun some sections; the others come from the .json
                                       # beside --out (docs/benchmarks.json by default)
    python bench/run_all.py --only none --merge other/benchmarks.json  # add another run's sections

Sections: (a) attention, (b) training throughput, (c) preprocessing, (d) predict latency,
(e) full LOSO with the feature cache, (f) the LOSO accuracy of a finished default run
(``--loso-run RUN_DIR``). Every ratio compares figures measured in the same run.
A section whose code or data is missing is written as "not measured: <reason>".
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import torch  # noqa: E402

from timing import cpu_model, load_average, write_atomic  # noqa: E402

logger = logging.getLogger("bench")

SECTIONS = {
    "a": "Attention: dense SSA, bucketed SSA, full attention and SDPA",
    "b": "Training throughput of the paper-size model",
    "c": "Preprocessing throughput",
    "d": "`uamrn predict` latency",
    "e": "Full LOSO on MEGC2019 with the feature cache",
    "f": "LOSO accuracy of the default `uamrn evaluate` on MEGC2019",
}


def default_data_dir() -> Path:
    return Path(os.environ.get("UAMRN_SHARED_DATA", REPO.parent / "shared" / "data"))


def run_section(key: str, args: argparse.Namespace) -> dict:
    """Run one section; return ``{"markdown", "targets", "raw", "seconds", "load_before", "load_after"}``."""
    load_before = load_average()
    start = time.perf_counter()
    try:
        if key == "a":
            import measure_attention as section

            lengths = [32, 256, 1024] if args.quick else [32, 256, 1024, 4096, 8192]
            raw = {
                "rows": section.measure(lengths, [3, 6], memory_limit_gb=args.memory_limit_gb, quick=args.quick),
                "short": section.measure_short(repeats=3 if args.quick else 30),
            }
            markdown = (
                section.render(raw["rows"], torch.get_num_threads(), quick=args.quick)
                + "\n" + section.render_short(raw["short"], quick=args.quick)
            )
            targets = section.targets(raw["rows"], raw["short"])
            bench_attention = REPO / "docs" / "bench-attention.md"
            if bench_attention.is_file():
                markdown += "\nThe network helper's own attention measurements (`docs/bench-attention.md`), as written there:\n\n"
                markdown += "> " + bench_attention.read_text().strip().replace("\n", "\n> ") + "\n"
        elif key == "b":
            import measure_training as section

            raw = section.measure(quick=args.quick)
            markdown, targets = section.render(raw), section.targets(raw)
        elif key == "c":
            import measure_preprocessing as section

            raw = section.measure(args.data_dir, quick=args.quick)
            markdown, targets = section.render(raw), []
        elif key == "d":
            import measure_predict as section

            raw = section.measure(args.data_dir, quick=args.quick)
            markdown, targets = section.render(raw), section.targets(raw)
        elif key == "e":
            import measure_loso as section

            if args.quick:
                raw = {"skipped": "skipped in --quick mode (the full LOSO takes tens of minutes)"}
            else:
                raw = section.measure(args.data_dir, epochs=args.loso_epochs, jobs=args.loso_jobs)
            markdown, targets = section.render(raw), []
        elif key == "f":
            import measure_accuracy as section

            if args.loso_run is None:
                raw = {"skipped": "give a finished uamrn evaluate run with --loso-run RUN_DIR"}
            else:
                raw = section.measure(args.loso_run)
            markdown, targets = section.render(raw), []
        else:
            raise ValueError(f"unknown section {key!r}; choose from {', '.join(SECTIONS)}")
    except (ImportError, FileNotFoundError) as err:
        logger.error("section %s not measured: %s", key, err)
        raw, markdown, targets = {"error": str(err)}, f"not measured: {err}\n", []
    except Exception as err:  # a failing section must not lose the others' results
        logger.error("section %s failed:\n%s", key, traceback.format_exc())
        raw, markdown, targets = {"error": repr(err)}, f"not measured: the section failed with {err!r}\n", []
    if args.quick:
        # One cold call per size is a smoke test, not a measurement to judge a target by.
        targets = [(label, f"{measured} (--quick, not judged)", None) for label, measured, _ in targets]
    return {
        "markdown": markdown,
        "targets": [list(target) for target in targets],
        "raw": raw,
        "seconds": time.perf_counter() - start,
        "load_before": load_before,
        "load_after": load_average(),
        "quick": args.quick,
        "command": "python bench/run_all.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def refresh_sections(results: dict) -> None:
    """Rebuild the text and targets of sections (b) to (f) from their raw numbers, and (a)'s targets."""
    import measure_accuracy
    import measure_attention
    import measure_loso
    import measure_predict
    import measure_preprocessing
    import measure_training

    renderers = {"b": measure_training.render, "c": measure_preprocessing.render,
                 "d": measure_predict.render, "e": measure_loso.render,
                 "f": measure_accuracy.render}
    def attention_targets(raw):
        # Results written before the short-sequence panel existed are a bare list of rows.
        if isinstance(raw, list):
            return measure_attention.targets(raw)
        return measure_attention.targets(raw["rows"], raw.get("short"))

    checks = {"a": attention_targets, "b": measure_training.targets, "d": measure_predict.targets}
    for key, section in results.items():
        raw = section.get("raw") if isinstance(section, dict) else None
        if not raw or (isinstance(raw, dict) and "error" in raw):
            continue
        if key in renderers:
            section["markdown"] = renderers[key](raw)
        if key in checks and not section.get("quick"):
            section["targets"] = [list(target) for target in checks[key](raw)]


def read_results(path: Path, parser: argparse.ArgumentParser) -> dict:
    """Read another run's benchmarks.json for --merge, or stop with a message naming the file."""
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        parser.error(f"--merge file {path} not found; give the benchmarks.json written beside another run's --out")
    except OSError as err:
        parser.error(f"--merge file {path} cannot be read ({err.strerror}); give a benchmarks.json file")
    except json.JSONDecodeError as err:
        parser.error(f"--merge file {path} is not valid JSON ({err}); rerun the benchmark that wrote it")
    if not isinstance(results, dict):
        parser.error(f"--merge file {path} is not a JSON object of sections; give a benchmarks.json file")
    for key, section in results.items():
        if key not in SECTIONS:
            parser.error(f"--merge file {path} has unknown section {key!r}; sections are {', '.join(SECTIONS)}")
        if not isinstance(section, dict) or "markdown" not in section:
            parser.error(f"--merge file {path}: section {key!r} is not a benchmark section; rerun the benchmark")
    return results


def _measured(section: dict) -> bool:
    """True when a section contains measurements, not a skip or an error."""
    raw = section.get("raw")
    return bool(raw) and not (isinstance(raw, dict) and ("skipped" in raw or "error" in raw))


def merge_sections(results: dict, other: dict) -> None:
    """Copy other's sections into results, but never a skipped, failed or --quick one over a full one."""
    for key, section in other.items():
        current = results.get(key)
        if current is not None and _measured(current) and not current.get("quick"):
            if not _measured(section) or section.get("quick"):
                logger.warning("kept the measured section (%s): the new one is skipped, failed or --quick", key)
                continue
        results[key] = section


def _status(met) -> str:
    if met is None:
        return "not measured"
    return "met" if met else "**missed**"


def render(results: dict, command: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python bench/run_all.py`; each section names the command that measured it. Machine: {cpu_model()}, {os.cpu_count()} CPU cores visible, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, no GPU. The machine is shared with other "
        "jobs, so absolute times vary between runs; each ratio compares figures measured minutes apart in the same "
        "section. The load average (1, 5, 15 min) before and after each section is given with it.",
        "",
        "## Targets",
        "",
        "| target | measured | status |",
        "|---|---|---|",
    ]
    for key in SECTIONS:
        for label, measured, met in results.get(key, {}).get("targets", []):
            lines.append(f"| ({key}) {label} | {measured} | {_status(met)} |")
    lines += ["", "Causes of missed targets are given at the end of this file.", ""]

    for key, title in SECTIONS.items():
        lines += [f"## ({key}) {title}", ""]
        result = results.get(key)
        if result is None:
            lines += ["not measured: this section has not been run yet", ""]
            continue
        quick = " (--quick)" if result.get("quick") else ""
        lines += [
            f"Measured {result['date']}{quick} in {result['seconds']:.0f} s by `{result.get('command', command)}`; "
            f"load average before {result['load_before']}, after {result['load_after']}.",
            "",
            result["markdown"].rstrip(),
            "",
        ]
    notes = BENCH_DIR / "notes.md"
    if notes.is_file():
        lines += [notes.read_text().rstrip(), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and one repeat, LOSO skipped")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections to run (default a,b,c,d,e,f)")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="the shared real-data folder")
    parser.add_argument("--out", type=Path, default=None,
                        help="Markdown report to write (default docs/benchmarks.md; with --quick "
                             "uamrn-bench-quick/benchmarks.md in the temp folder, so a smoke test never "
                             "replaces the measured results)")
    parser.add_argument("--memory-limit-gb", type=float, default=6.0,
                        help="skip an attention run whose estimated peak memory exceeds this, in GiB (default 6)")
    parser.add_argument("--loso-epochs", type=int, default=None, help="epochs per LOSO fold (default: uamrn evaluate's)")
    parser.add_argument("--loso-jobs", type=int, default=1, help="fold processes for the LOSO section (default 1)")
    parser.add_argument("--loso-run", type=Path, default=None,
                        help="finished uamrn evaluate run on MEGC2019 whose accuracy section (f) reports")
    parser.add_argument("--merge", type=Path, nargs="*", default=[],
                        help="benchmarks.json files of other runs whose sections are copied in before rendering")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")

    sections = [key.strip() for key in args.only.split(",") if key.strip() and key.strip() != "none"]
    unknown = [key for key in sections if key not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {unknown[0]!r} in --only; choose from {', '.join(SECTIONS)}")

    if args.out is None:
        quick_dir = Path(tempfile.gettempdir()) / "uamrn-bench-quick"
        args.out = quick_dir / "benchmarks.md" if args.quick else REPO / "docs" / "benchmarks.md"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    json_path = args.out.with_suffix(".json")
    results = json.loads(json_path.read_text()) if json_path.is_file() else {}
    for other in args.merge:
        merge_sections(results, read_results(Path(other), parser))
    command = "python bench/run_all.py" + (" --quick" if args.quick else "")
    if not sections:
        refresh_sections(results)
        write_atomic(json_path, json.dumps(results, indent=2, default=str) + "\n")
        write_atomic(args.out, render(results, command))
    for key in sections:
        logger.info("section (%s) %s", key, SECTIONS[key])
        # A skipped or failed section does not replace measured results in the report.
        merge_sections(results, {key: run_section(key, args)})
        # Both files are rewritten after every section, so an interrupted run keeps what it finished.
        write_atomic(json_path, json.dumps(results, indent=2, default=str) + "\n")
        write_atomic(args.out, render(results, command))
    logger.info("wrote %s and %s", args.out, json_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
