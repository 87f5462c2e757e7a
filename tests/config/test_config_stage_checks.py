"""A stage's run refuses a config it cannot use with the same error type, and dotted field names, as loading
does: what it needs set, and its section's own checks for callers that built the config in Python."""

import pytest

from sse_dist.config import ConfigError, EmbedConfig, ExperimentConfig, PreprocessConfig, ShardConfig, load
from sse_dist.embed import run as embed
from sse_dist.preprocess import run as preprocess
from sse_dist.shard import run as shard


@pytest.mark.parametrize(
    ("run", "cfg", "message"),
    [
        (shard, ShardConfig(output="out"), r"^shard\.input: must be set$"),
        (shard, ShardConfig(input="in", output="out", workers=0), r"^shard\.workers: must be >= 1$"),
        (preprocess, PreprocessConfig(), r"^preprocess\.shards: must be set$"),
        (embed, EmbedConfig(shards=["s"]), r"^embed\.output: must be set$"),
        (
            embed,
            EmbedConfig(method="mfcc_stats", shards=["s"], output="e.npz", onnx="m.onnx"),
            r"^embed\.onnx:",
        ),
    ],
)
def test_a_stage_refuses_what_it_cannot_run_with_a_config_error(run, cfg, message):
    with pytest.raises(ConfigError, match=message):
        run(cfg)


def test_an_export_of_a_network_free_method_is_refused_when_the_config_is_loaded():
    with pytest.raises(ConfigError, match=r"^embed\.onnx: mfcc_stats has no network to export$"):
        load(ExperimentConfig, [], ["embed.method=mfcc_stats", "embed.onnx=m.onnx"])
