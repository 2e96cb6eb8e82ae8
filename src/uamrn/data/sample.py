"""The record every database reader yields, and a labelled set of them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One micro-expression clip.

    Attributes:
        database: Source database key (``casme2``, ``samm``, ``smic``, ``casme3``, ``demo``).
        subject: Subject id as the database writes it (``sub01``, ``006``, ``s01``).
        clip: Clip id, unique within the subject (``EP02_01f``).
        label: Class index into the owning ``SampleSet.class_names``.
        onset: Onset frame image, when the database provides frames.
        apex: Apex frame image (or the cropped apex face of a composite database).
        flow: Onset-to-apex optical-flow image (u, v, optical strain), when provided.
        frames: Every frame of the clip in order, when known (used for apex spotting).
    """

    database: str
    subject: str
    clip: str
    label: int
    onset: Path | None = None
    apex: Path | None = None
    flow: Path | None = None
    frames: tuple[Path, ...] = ()

    @property
    def key(self) -> str:
        """Identifier unique across databases: ``database/subject/clip``."""
        return f"{self.database}/{self.subject}/{self.clip}"


@dataclass
class SampleSet:
    """Samples of one dataset with their class names.

    Attributes:
        name: Dataset key (``megc2019``, ``casme2`` ...).
        class_names: Class names, indexed by ``Sample.label``.
        samples: The samples, in reader order.
        missing: Keys of samples listed by the annotations but absent on disk, kept only
            when the caller allowed missing files; they are reported, never silently lost.
        skipped: Keys of samples whose files exist but failed preprocessing (unreadable
            image, no face, onset and apex of different sizes), mapped to the reason.
    """

    name: str
    class_names: tuple[str, ...]
    samples: list[Sample]
    missing: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def subjects(self) -> list[str]:
        """Subjects in first-seen order, as LOSO folds are numbered."""
        return list(dict.fromkeys(s.subject for s in self.samples))

    def class_counts(self) -> dict[str, int]:
        counts = Counter(s.label for s in self.samples)
        return {name: counts.get(i, 0) for i, name in enumerate(self.class_names)}
