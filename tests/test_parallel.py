"""Shard selection, thread sharing and the fold process pool."""

from __future__ import annotations

import logging
import os

import pytest

from uamrn.train.parallel import map_folds, parse_shard, select_shard, worker_threads

SUBJECTS = [f"sub{i:02d}" for i in range(1, 12)]


def thread_probe(subject: str, offset: int) -> tuple[int, str | None, int]:
    """Report the worker's torch threads and OpenMP variable (runs in a worker process)."""
    import torch

    return torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS"), len(subject) + offset


def failing_fold(subject: str) -> None:
    if subject == "b":
        raise ValueError(f"fold {subject} failed on purpose")


def test_parse_shard_valid():
    assert parse_shard("2/4") == (2, 4)
    assert parse_shard(" 1 / 1 ") == (1, 1)


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "a/b", "2", "-1/3", "1/2/3"])
def test_parse_shard_invalid(text):
    with pytest.raises(ValueError, match="shard"):
        parse_shard(text)


def test_parse_shard_zero_mentions_one_based():
    with pytest.raises(ValueError, match="1-based"):
        parse_shard("0/4")


@pytest.mark.parametrize("count", [1, 2, 3, 4, 11])
def test_select_shard_partitions(count):
    shards = [select_shard(SUBJECTS, index, count) for index in range(1, count + 1)]
    flat = [subject for shard in shards for subject in shard]
    sizes = [len(shard) for shard in shards]

    assert sorted(flat) == sorted(SUBJECTS)
    assert len(flat) == len(set(flat))
    assert max(sizes) - min(sizes) <= 1


def test_select_shard_ignores_order():
    assert select_shard(list(reversed(SUBJECTS)), 2, 3) == select_shard(SUBJECTS, 2, 3)


def test_select_shard_fixed_assignment():
    assert select_shard(SUBJECTS, 1, 4) == ["sub01", "sub05", "sub09"]
    assert select_shard(SUBJECTS, 4, 4) == ["sub04", "sub08"]


def test_select_shard_empty_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="uamrn.train.parallel"):
        chosen = select_shard(["a", "b"], 3, 3)
    assert chosen == []
    assert "has no folds" in caplog.text


@pytest.mark.parametrize("index, count", [(0, 2), (3, 2), (1, 0)])
def test_select_shard_rejects_bad_index(index, count):
    with pytest.raises(ValueError, match="invalid shard"):
        select_shard(SUBJECTS, index, count)


def test_worker_threads_share_cores():
    assert worker_threads(2, cores=4) == 2
    assert worker_threads(3, cores=8) == 2
    assert worker_threads(4, cores=2) == 1
    assert worker_threads(1, cores=6) == 6


def test_worker_threads_rejects_zero_jobs():
    with pytest.raises(ValueError, match="at least 1"):
        worker_threads(0, cores=4)


def test_map_folds_serial_in_process():
    results = dict(map_folds(thread_probe, ["a", "bb"], jobs=1, shared_args=(10,)))
    assert results["a"][2] == 11
    assert results["bb"][2] == 12


def test_map_folds_workers_limit_threads():
    results = dict(map_folds(thread_probe, ["a", "bb", "ccc"], jobs=2, shared_args=(100,), cores=4))

    assert sorted(results) == ["a", "bb", "ccc"]
    assert results["ccc"][2] == 103
    for threads, omp, _ in results.values():
        assert threads == 2
        assert omp == "2"


def test_map_folds_raises_fold_error():
    with pytest.raises(ValueError, match="fold b failed"):
        list(map_folds(failing_fold, ["a", "b", "c"], jobs=2, cores=2))


def test_map_folds_caps_jobs_at_cores(caplog):
    with caplog.at_level("WARNING", logger="uamrn.train.parallel"):
        results = dict(map_folds(thread_probe, ["a", "bb", "ccc"], jobs=4, shared_args=(100,), cores=2))
    assert sorted(results) == ["a", "bb", "ccc"]
    assert {threads for threads, _, _ in results.values()} == {1}
    assert "more than the 2 cores" in caplog.text
