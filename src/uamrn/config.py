"""Typed configuration, composed from small groups and saved with every run.

Each group is a pydantic model that rejects unknown keys, so a typo in a YAML file or an
override fails with the offending name instead of being ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SequenceConfig(_Group):
    """Settings of the sequence rebuilt from the onset-to-apex change by magnification."""

    factor_start: float = Field(2.0, ge=0.0, description="smallest amplification factor; 0 keeps the apex unchanged")
    factor_stop: float = Field(13.0, ge=0.0)
    length: int = Field(32, ge=1, description="L: number of frames, one per amplification factor")
    magnifier: Literal["linear", "learned"] = "linear"
    learned_weights: Path | None = None
    face_margin: float = Field(0.1, ge=0.0, le=1.0, description="face box margin, fraction of the landmark box size per side")
    align_eyes: bool = Field(False, description="rotate onset, apex and box so that the eye line is horizontal")
    flow_unit: Literal["min", "max"] = Field(
        "min", description="flow inputs: the factor (smallest or largest) at which the stored flow image is kept unchanged"
    )

    @model_validator(mode="after")
    def _check_range(self) -> "SequenceConfig":
        if self.factor_stop < self.factor_start:
            raise ValueError(
                f"factor_stop ({self.factor_stop}) is below factor_start ({self.factor_start}); "
                "give the amplification range as START:STOP with START <= STOP"
            )
        return self

    def factors(self) -> list[float]:
        """Amplification factors, evenly spaced and ascending; one factor when length is 1."""
        if self.length == 1:
            return [self.factor_start]
        step = (self.factor_stop - self.factor_start) / (self.length - 1)
        return [self.factor_start + i * step for i in range(self.length)]


class FrontEndConfig(_Group):
    """The frozen feature extractor applied to every frame of the sequence."""

    name: Literal["mini_xception", "resnet18", "flow_pixels"] = "mini_xception"
    weights: Path | None = Field(None, description="checkpoint for resnet18 (torchvision or FER+ format)")
    resnet_stage: Literal["layer1", "layer2", "layer3", "layer4"] = "layer3"
    pool: int = Field(2, ge=1, description="feature maps are average-pooled to pool x pool")


class ModelConfig(_Group):
    """The trainable upper network: projection, SSA blocks and the uncertainty head."""

    d_model: int = Field(128, ge=8)
    n_blocks: int = Field(3, ge=1)
    n_heads: int = Field(2, ge=1)
    # Bucket ids are int64 bit patterns, so n_p is capped well below 63 bits.
    n_hyperplanes: int = Field(3, ge=1, le=32, description="n_p: hyperplanes per hash table, 2**n_p buckets")
    n_tables: int = Field(4, ge=1, description="n_t: hash tables whose same-bucket pairs are unioned")
    attention: Literal["sparse", "full"] = "sparse"
    attention_impl: Literal["auto", "dense", "bucketed"] = "auto"
    redraw_hyperplanes: bool = False
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    mlp_ratio: float = Field(2.0, gt=0.0)
    mc_samples: int = Field(8, ge=1, description="M: Monte-Carlo dropout passes, batched")
    uncertainty: bool = True

    @model_validator(mode="after")
    def _check_heads(self) -> "ModelConfig":
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        return self


class TrainConfig(_Group):
    """Optimiser and schedule; the model evaluated is always the one after the last epoch."""

    epochs: int = Field(40, ge=1)
    lr: float = Field(2e-4, gt=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0.0)
    lr_step: int = Field(10, ge=1, description="epochs between learning-rate decays")
    lr_decay: float = Field(0.1, gt=0.0, le=1.0)
    batch_size: int = Field(32, ge=1)
    seed: int = 0
    threads: int = Field(0, ge=0, description="torch CPU threads per fold; 0 keeps torch's default")


class DataConfig(_Group):
    """Sample selection and the kind of model input built from each sample."""

    dataset: Literal["megc2019", "casme2", "samm", "smic", "casme3", "demo"] = "megc2019"
    root: Path | None = None
    databases: list[str] | None = Field(None, min_length=1, description="parts of a composite set; None reads all")
    classes: str | None = None
    annotations: Path | None = Field(None, description="coding sheet or class list; searched in root when not given")
    apex: Literal["auto", "middle", "spotted"] = Field(
        "auto", description="auto: the annotated apex, else the middle frame; spotted: largest difference from onset"
    )
    allow_missing: bool = False
    input: Literal["flow", "apex+flow", "frames"] = "flow"


class RunConfig(_Group):
    """Everything a run depends on; saved as ``config.yaml`` in the run directory."""

    data: DataConfig = DataConfig()
    sequence: SequenceConfig = SequenceConfig()
    frontend: FrontEndConfig = FrontEndConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    @classmethod
    def from_yaml(cls, path: Path) -> "RunConfig":
        """Read and validate a YAML run config.

        Raises:
            ValueError: The file cannot be read, is empty, or has an unknown key or an invalid
                value; the message names the file and each offending key.
        """
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as err:
            raise ValueError(f"cannot read config {path}: {err}") from err
        if raw is None:
            # An empty file would silently give every default (and, in uamrn evaluate, switch
            # off the cpu preset), which is almost never what its author meant.
            raise ValueError(
                f"config {path} is empty; write the settings to change (e.g. 'train: {{epochs: 5}}') or drop --config"
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            raise ValueError(f"invalid config {path}: {format_validation_error(err)}") from None


def format_validation_error(error: ValidationError) -> str:
    """Format a pydantic error as one ``key = value: problem`` line per invalid value, without links.

    An unknown key lists the keys its group accepts, so that a typo shows its correction. A
    single error stays on one line; several start on a new, indented line each.
    """
    clauses = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            valid = _group_keys(error.title, item["loc"][:-1])
            clauses.append(f"{location}: unknown key" + (f"; valid keys: {', '.join(valid)}" if valid else ""))
            continue
        message = item["msg"].replace("Value error, ", "")
        if not item["loc"] and item["type"] == "model_type":
            valid = _group_keys(error.title, ())
            clauses.append(f"the top level must be a mapping of the groups {', '.join(valid)}, got {type(item['input']).__name__}")
            continue
        if "input" not in item or isinstance(item["input"], (dict, list)):
            # A whole group or file failed (a cross-field check or a wrong type), so the
            # contents are left out of the message.
            clauses.append(f"{location}: {message}")
        else:
            clauses.append(f"{location} = {item['input']!r}: {message}")
    if len(clauses) == 1:
        return clauses[0]
    return "".join(f"\n  {clause}" for clause in clauses)


_MODELS = {model.__name__: model for model in (RunConfig, DataConfig, SequenceConfig, FrontEndConfig, ModelConfig, TrainConfig)}


def _group_keys(model_name: str, location: tuple) -> list[str]:
    """Return the field names of the group at ``location`` inside the model called ``model_name``."""
    model = _MODELS.get(model_name)
    for part in location:
        if model is None:
            return []
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return list(model.model_fields) if model is not None else []


def paper_model() -> ModelConfig:
    """Return the size reported for UAMRN: d_model 1024, 3 blocks, 2 heads, n_p 3, n_t 4."""
    return ModelConfig(d_model=1024, n_blocks=3, n_heads=2, n_hyperplanes=3, n_tables=4)


def cpu_model() -> ModelConfig:
    """Return a small configuration for tests and quick runs on a laptop CPU."""
    return ModelConfig()


PRESETS = {"paper": paper_model, "cpu": cpu_model}
