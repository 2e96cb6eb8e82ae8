"""Fold parallelism: a fixed partition of LOSO folds into shards, and a process pool for folds.

Shards split the folds across machines (one cluster array task per shard); ``uamrn merge``
joins the shards' run directories afterwards. Shard indices are **1-based**: ``--shard 1/4``
to ``--shard 4/4``, which matches a SLURM array declared as ``--array=1-4``.

Within one machine, :func:`map_folds` trains folds in ``jobs`` worker processes and gives
each worker ``max(1, cores // jobs)`` torch threads, so the workers together never ask for
more threads than there are cores.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any

from tqdm import tqdm

__all__ = ["available_cores", "map_folds", "parse_shard", "select_shard", "worker_threads"]

logger = logging.getLogger(__name__)

_SHARD_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")

# Environment variables read by the OpenMP, MKL and OpenBLAS runtimes when they start.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"I/N"`` (1-based shard I of N) into ``(I, N)``.

    Raises:
        ValueError: The text is not two integers ``I/N`` with ``1 <= I <= N``.
    """
    match = _SHARD_PATTERN.match(str(text))
    if not match:
        raise ValueError(
            f"invalid shard {text!r}: expected I/N with 1-based I, for example --shard 2/4 "
            "(with SLURM: --shard ${SLURM_ARRAY_TASK_ID}/4 and --array=1-4)"
        )
    index, count = int(match.group(1)), int(match.group(2))
    _check_shard(index, count)
    return index, count


def _check_shard(index: int, count: int) -> None:
    if count < 1:
        raise ValueError(f"invalid shard count {count}: a run needs at least 1 shard (I/N with N >= 1)")
    if not 1 <= index <= count:
        hint = " (shard indices are 1-based; use --array=1-N in SLURM)" if index == 0 else ""
        raise ValueError(f"invalid shard {index}/{count}: the index must be between 1 and {count}{hint}")


def select_shard(subjects: Sequence[str], index: int, count: int) -> list[str]:
    """Select the folds of shard ``index`` of ``count`` (1-based).

    The subjects are sorted and dealt out in turn: position p of the sorted list goes to
    shard ``p % count + 1``. The partition therefore depends only on the set of subjects,
    not on their order, and the shards' sizes differ by at most one.

    Args:
        subjects: Test subjects of the run (one fold each); duplicates are ignored.
        index: Shard number, from 1 to ``count``.
        count: Number of shards.

    Returns:
        The subjects of this shard, in sorted order; empty when ``count`` exceeds the
        number of subjects and this shard gets none.

    Raises:
        ValueError: ``count < 1`` or ``index`` outside ``1..count``.
    """
    _check_shard(index, count)
    ordered = sorted(set(subjects))
    chosen = ordered[index - 1 :: count]
    if not chosen:
        logger.warning("shard %d/%d has no folds: only %d subjects for %d shards", index, count, len(ordered), count)
    return chosen


def available_cores() -> int:
    """Return the number of CPU cores this process may run on (its affinity mask when known)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_threads(jobs: int, cores: int | None = None) -> int:
    """Return the torch threads per worker for ``jobs`` workers: ``max(1, cores // jobs)``."""
    if jobs < 1:
        raise ValueError(f"invalid jobs {jobs}: give at least 1 worker process")
    return max(1, (cores or available_cores()) // jobs)


# Arguments shared by every fold of one pool, set once per worker by ``_init_worker``.
_SHARED: tuple[Callable[..., Any], tuple[Any, ...]] | None = None


def _init_worker(threads: int, fold_fn: Callable[..., Any], shared_args: tuple[Any, ...]) -> None:
    """Limit the worker's threads and keep the fold function and its shared arguments."""
    global _SHARED
    for name in THREAD_ENV_VARS:
        os.environ[name] = str(threads)

    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or inter-op work already started in this process
        pass
    _SHARED = (fold_fn, shared_args)


def _run_fold(subject: str) -> Any:
    fold_fn, shared_args = _SHARED
    return fold_fn(subject, *shared_args)


def map_folds(
    fold_fn: Callable[..., Any],
    subjects: Sequence[str],
    jobs: int = 1,
    shared_args: tuple[Any, ...] = (),
    cores: int | None = None,
) -> Iterator[tuple[str, Any]]:
    """Run ``fold_fn(subject, *shared_args)`` for every subject, ``jobs`` at a time.

    With ``jobs == 1`` the folds run one after another in this process and the thread
    settings are left alone. With more, each runs in a worker process started with
    ``spawn`` (a forked child can hang in OpenMP that its parent had started). Each worker
    receives ``shared_args`` once, at start, and uses ``worker_threads(jobs, cores)`` torch
    threads, with the OpenMP, MKL and OpenBLAS thread variables set to the same number.

    Args:
        fold_fn: A module-level (picklable) function of ``(subject, *shared_args)``.
        subjects: Test subjects, one fold each.
        jobs: Worker processes; capped at the number of subjects and at ``cores``.
        shared_args: Arguments common to all folds (sample set, features, config, run dir).
        cores: Cores to share among the workers; those available to this process when None.

    Yields:
        ``(subject, result)`` as each fold finishes (not in input order when ``jobs > 1``).

    Raises:
        ValueError: ``jobs < 1``.
        Exception: The first exception raised by a fold; folds not yet started are cancelled.
    """
    available = cores or available_cores()
    if jobs > available:
        # More processes than cores would oversubscribe them even at one thread each.
        logger.warning("--jobs %d is more than the %d cores this process may use; running %d", jobs, available, available)
        jobs = available
    threads = worker_threads(jobs, available)
    subjects = list(subjects)
    if jobs == 1 or len(subjects) <= 1:
        for subject in tqdm(subjects, desc="LOSO folds", unit="fold"):
            yield subject, fold_fn(subject, *shared_args)
        return

    workers = min(jobs, len(subjects))
    logger.info("training %d folds in %d processes with %d torch threads each", len(subjects), workers, threads)
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(threads, fold_fn, tuple(shared_args)),
    ) as pool:
        pending = {pool.submit(_run_fold, subject): subject for subject in subjects}
        with tqdm(total=len(pending), desc="LOSO folds", unit="fold") as progress:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_EXCEPTION)
                for future in finished:
                    subject = pending.pop(future)
                    error = future.exception()
                    if error is not None:
                        logger.error("fold %s failed: %s; cancelling the folds not started", subject, error)
                        for other in pending:
                            other.cancel()
                        raise error
                    progress.update()
                    yield subject, future.result()
