"""Typed experiment configuration (see :mod:`.schema`, :mod:`.train` and :mod:`.launch` for every field)."""

from .launch import LaunchConfig
from .loader import ConfigError, dump_yaml, field_docs, from_dict, load, require_set, to_dict, validate
from .metrics import MetricsConfig
from .schema import (
    DemoConfig,
    EmbedConfig,
    ExperimentConfig,
    FeatureConfig,
    PhoneConfig,
    PreprocessConfig,
    ScoreConfig,
    ShardConfig,
    SynthConfig,
)
from .train import (
    AugmentConfig,
    DataConfig,
    DeepSpeedConfig,
    EqAugmentConfig,
    MaskAugmentConfig,
    ModelConfig,
    NarrowbandAugmentConfig,
    NoiseAugmentConfig,
    OptimConfig,
    ReverbAugmentConfig,
    TrainConfig,
)

__all__ = [
    "AugmentConfig",
    "ConfigError",
    "DataConfig",
    "DeepSpeedConfig",
    "DemoConfig",
    "EmbedConfig",
    "EqAugmentConfig",
    "ExperimentConfig",
    "FeatureConfig",
    "LaunchConfig",
    "MaskAugmentConfig",
    "MetricsConfig",
    "ModelConfig",
    "NarrowbandAugmentConfig",
    "NoiseAugmentConfig",
    "OptimConfig",
    "PhoneConfig",
    "PreprocessConfig",
    "ReverbAugmentConfig",
    "ScoreConfig",
    "ShardConfig",
    "SynthConfig",
    "TrainConfig",
    "dump_yaml",
    "field_docs",
    "from_dict",
    "load",
    "require_set",
    "to_dict",
    "validate",
]
