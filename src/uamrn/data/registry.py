"""Dispatch a dataset key to its reader module, ``uamrn.data.<key>.load(cfg)``."""

from __future__ import annotations

import importlib
import logging

from uamrn.config import DataConfig
from uamrn.data.sample import SampleSet

__all__ = ["load_dataset"]

logger = logging.getLogger(__name__)


def load_dataset(cfg: DataConfig) -> SampleSet:
    """Read the samples of ``cfg.dataset`` with the reader of the same name.

    Args:
        cfg: Data configuration; ``cfg.dataset`` names the module ``uamrn.data.<dataset>``.

    Returns:
        The samples, with ``missing`` filled when ``cfg.allow_missing`` dropped some.

    Raises:
        ValueError: No reader module exists for the dataset key.
    """
    module_name = f"uamrn.data.{cfg.dataset}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        raise ValueError(
            f"dataset {cfg.dataset!r} has no reader yet (module {module_name} not found); "
            "use --dataset megc2019 or install a version that reads it"
        ) from err

    sample_set = module.load(cfg)
    logger.info(
        "%s: %d samples, %d subjects, classes %s",
        sample_set.name, len(sample_set.samples), len(sample_set.subjects), sample_set.class_counts(),
    )
    return sample_set
