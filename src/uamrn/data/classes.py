"""Class maps: from a database's raw emotion labels to the classes of one protocol.

Each database has a default map (the class set of the UAMRN paper, or the 3 classes of the
CAS(ME)^3 file) and a ``composite`` map to the MEGC2019 classes negative / positive /
surprise. An emotion a map leaves out (``None``) drops the clip from that protocol. An
emotion unknown to the database is an error, because it usually means a typo in the sheet.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClassMap", "class_map", "CLASS_MAPS", "DEFAULT_MAPS"]


@dataclass(frozen=True)
class ClassMap:
    """Raw emotion label -> class name (None = clip not used), with the class order.

    Attributes:
        name: Map name as ``--classes`` takes it.
        class_names: Classes in label-index order.
        emotions: Every raw emotion the database uses, lower case, to a class or None.
    """

    name: str
    class_names: tuple[str, ...]
    emotions: dict[str, str | None]

    def label(self, emotion: str) -> int | None:
        """Class index of a known raw emotion, or None when the map leaves it out."""
        target = self.emotions[emotion]
        return None if target is None else self.class_names.index(target)


_COMPOSITE = ("negative", "positive", "surprise")

# The MEGC2019 composite took CASME II's negative class from its 5-class list, so fear and
# sadness clips are not in it; SAMM's negative class takes every negative emotion.
CLASS_MAPS: dict[str, dict[str, ClassMap]] = {
    "casme2": {
        "5class": ClassMap(
            "5class",
            ("happiness", "surprise", "disgust", "repression", "others"),
            {"happiness": "happiness", "surprise": "surprise", "disgust": "disgust",
             "repression": "repression", "others": "others", "fear": None, "sadness": None},
        ),
        "composite": ClassMap(
            "composite",
            _COMPOSITE,
            {"happiness": "positive", "surprise": "surprise", "disgust": "negative",
             "repression": "negative", "others": None, "fear": None, "sadness": None},
        ),
    },
    "samm": {
        "5class": ClassMap(
            "5class",
            ("anger", "contempt", "happiness", "surprise", "other"),
            {"anger": "anger", "contempt": "contempt", "happiness": "happiness", "surprise": "surprise",
             "other": "other", "disgust": None, "fear": None, "sadness": None},
        ),
        "composite": ClassMap(
            "composite",
            _COMPOSITE,
            {"anger": "negative", "contempt": "negative", "disgust": "negative", "fear": "negative",
             "sadness": "negative", "happiness": "positive", "surprise": "surprise", "other": None},
        ),
    },
    "smic": {
        "3class": ClassMap(
            "3class",
            ("positive", "negative", "surprise"),
            {"positive": "positive", "negative": "negative", "surprise": "surprise"},
        ),
        "composite": ClassMap(
            "composite",
            _COMPOSITE,
            {"positive": "positive", "negative": "negative", "surprise": "surprise"},
        ),
    },
    "casme3": {
        "composite": ClassMap(
            "composite",
            _COMPOSITE,
            {"anger": "negative", "disgust": "negative", "fear": "negative", "sad": "negative",
             "happy": "positive", "surprise": "surprise", "others": None},
        ),
        "6class": ClassMap(
            "6class",
            ("happiness", "surprise", "sadness", "disgust", "fear", "anger"),
            {"happy": "happiness", "surprise": "surprise", "sad": "sadness", "disgust": "disgust",
             "fear": "fear", "anger": "anger", "others": None},
        ),
    },
}

DEFAULT_MAPS = {"casme2": "5class", "samm": "5class", "smic": "3class", "casme3": "composite"}

# Other spellings accepted by ``--classes``.
_ALIASES = {"paper": None, "default": None, "3class-composite": "composite", "megc": "composite"}


def class_map(database: str, name: str | None) -> ClassMap:
    """Return the class map ``name`` of ``database`` (its default when None or ``paper``).

    Raises:
        ValueError: The database has no map of that name; the message lists the valid ones.
    """
    maps = CLASS_MAPS[database]
    key = name.strip().lower() if name else None
    key = _ALIASES.get(key, key) if key else None
    if key is None:
        key = DEFAULT_MAPS[database]
    if key == "3class" and "3class" not in maps:
        key = "composite"
    if key not in maps:
        raise ValueError(
            f"class set {name!r} is not defined for {database}; choose one of {', '.join(sorted(maps))} with --classes"
        )
    return maps[key]
