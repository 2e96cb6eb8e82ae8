"""Database readers, the common Sample record and the bundled demo set."""

from uamrn.data.sample import Sample, SampleSet

__all__ = ["Sample", "SampleSet"]
