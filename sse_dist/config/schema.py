"""The experiment configuration: one typed section per stage, one docstring per field.

A YAML file in ``configs/`` sets any subset of these fields; the command line overrides them. Every stage and the
Kubernetes launcher read the same :class:`ExperimentConfig`, so nothing is copied between YAML and code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .loader import ConfigError


def _require(cond: bool, name: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{name}: {message}")


@dataclass
class SynthConfig:
    output: str = "shards/synth"
    """Folder that receives the Kaldi data dirs ``train/`` and ``test/`` (with ``test/trials``)."""
    num_speakers: int = 64
    """Speakers in the corpus, train and test together."""
    num_test_speakers: int = 16
    """Speakers held out for the trial list; they never appear in ``train/``."""
    utts_per_speaker: int = 24
    """Utterances per training speaker."""
    test_utts_per_speaker: int = 12
    """Utterances per test speaker."""
    min_duration: float = 2.5
    """Shortest utterance, seconds."""
    max_duration: float = 6.0
    """Longest utterance, seconds."""
    sample_rate: int = 16000
    """Output sample rate, Hz."""
    snr_db_min: float = 10.0
    """Lowest signal-to-noise ratio of the per-utterance additive noise, dB."""
    snr_db_max: float = 35.0
    """Highest signal-to-noise ratio of the per-utterance additive noise, dB."""
    channel_db: float = 6.0
    """Peak gain, dB, of the random per-utterance channel equaliser (0 disables channel variability)."""
    max_trials: int = 20000
    """Trials in the list: every target pair, non-target pairs subsampled to fill the rest."""
    workers: int = 2
    """Processes that synthesise utterances in parallel."""
    seed: int = 0
    """Seed for speakers, texts and noise; the same seed gives the same corpus."""

    def validate(self) -> None:
        _require(self.num_speakers >= 4, "num_speakers", "need at least 4 speakers")
        _require(
            1 <= self.num_test_speakers < self.num_speakers,
            "num_test_speakers",
            f"must be in [1, num_speakers={self.num_speakers})",
        )
        _require(self.utts_per_speaker >= 1, "utts_per_speaker", "must be >= 1")
        _require(self.test_utts_per_speaker >= 2, "test_utts_per_speaker", "need >= 2 for target trials")
        _require(
            0.5 <= self.min_duration <= self.max_duration, "min_duration", "need 0.5 <= min <= max_duration"
        )
        _require(
            self.sample_rate in (8000, 16000, 22050, 24000, 32000, 44100, 48000),
            "sample_rate",
            "unusual rate",
        )
        _require(self.snr_db_min <= self.snr_db_max, "snr_db_min", "must be <= snr_db_max")
        _require(self.channel_db >= 0, "channel_db", "must be >= 0")
        _require(self.max_trials >= 1, "max_trials", "must be >= 1")
        _require(self.workers >= 1, "workers", "must be >= 1")


@dataclass
class ShardConfig:
    input: str = ""
    """A folder of audio files (unlabelled) or a Kaldi data dir (``wav.scp``, optional ``utt2spk``, ``text``)."""
    output: str = ""
    """Shard set root, a local path or ``s3://bucket/prefix``; audio goes to ``<output>/audio/``."""
    speakers: str = ""
    """Optional file of speaker ids (one per line): keep only their utterances (a Kaldi data dir subset)."""
    source: str = ""
    """Corpus name stored in every sample's JSON; empty means the input folder's name."""
    max_utts_per_shard: int = 1000
    """Start a new shard after this many utterances."""
    max_shard_mb: float = 256.0
    """Start a new shard once a shard's audio reaches this size, MB."""
    min_duration: float = 0.3
    """Shorter utterances are quarantined (too short for any feature window), seconds."""
    max_duration: float = 3600.0
    """Longer utterances are quarantined, seconds."""
    workers: int = 2
    """Threads that read and check audio files."""

    def validate(self) -> None:
        _require(self.max_utts_per_shard >= 1, "max_utts_per_shard", "must be >= 1")
        _require(self.max_shard_mb > 0, "max_shard_mb", "must be > 0")
        _require(0 < self.min_duration < self.max_duration, "min_duration", "need 0 < min < max_duration")
        _require(self.workers >= 1, "workers", "must be >= 1")


@dataclass
class FeatureConfig:
    sample_rate: int = 16000
    """Rate the features are computed at; audio at another rate is resampled (polyphase) first."""
    num_mel_bins: int = 40
    """Log-mel filterbank channels (the model's input dimension)."""
    frame_length_ms: float = 25.0
    """Analysis window, ms."""
    frame_shift_ms: float = 10.0
    """Hop between frames, ms (phone labels are stored at this frame rate)."""
    low_freq: float = 20.0
    """Lowest mel bin edge, Hz."""
    high_freq: float = 0.0
    """Highest mel bin edge, Hz; zero or negative is an offset from Nyquist (Kaldi's convention)."""
    preemphasis: float = 0.97
    """Pre-emphasis coefficient."""
    dither: float = 0.0
    """Gaussian dither added to samples (Kaldi uses 1.0); 0 keeps features deterministic."""
    vad_energy_threshold: float = 5.5
    """Energy VAD: a frame is speech if its log energy exceeds this plus ``vad_energy_mean_scale`` x mean."""
    vad_energy_mean_scale: float = 0.5
    """Energy VAD: weight of the utterance's mean log energy in the threshold."""
    vad_frames_context: int = 2
    """Energy VAD: frames either side that vote with the centre frame."""
    vad_proportion_threshold: float = 0.12
    """Energy VAD: share of voting frames that must be above threshold."""

    def validate(self) -> None:
        _require(self.sample_rate >= 8000, "sample_rate", "must be >= 8000")
        _require(8 <= self.num_mel_bins <= 128, "num_mel_bins", "must be in [8, 128]")
        _require(
            0 < self.frame_shift_ms <= self.frame_length_ms, "frame_shift_ms", "need 0 < shift <= length"
        )
        _require(0 <= self.preemphasis < 1, "preemphasis", "must be in [0, 1)")
        nyquist = self.sample_rate / 2
        high = self.high_freq if self.high_freq > 0 else nyquist + self.high_freq
        _require(0 <= self.low_freq < high <= nyquist, "low_freq", f"need 0 <= low < high <= {nyquist}")
        _require(0 <= self.vad_proportion_threshold <= 1, "vad_proportion_threshold", "must be in [0, 1]")
        _require(self.vad_frames_context >= 0, "vad_frames_context", "must be >= 0")


@dataclass
class PhoneConfig:
    source: str = "alignment"
    """Phone source (a key of ``sse_dist.preprocess.phones.SOURCES``): ``alignment`` (the corpus's own time
    alignment), ``pocketsphinx`` (forced alignment to the transcript, else phone-loop decoding), ``neural`` (a
    frame classifier trained with ``train --mode phones``), ``kmeans`` (acoustic units, no recognizer);
    empty computes features only."""
    field: str = "phones"
    """Name of the per-field shard that receives the phones (several sources can live side by side)."""
    form: Literal["hard", "soft"] = "hard"
    """``hard``: 1-best phone index per frame (uint8); ``soft``: posterior vector per frame (float16)."""
    lexicon: str = ""
    """pocketsphinx: the corpus's lexicon (``WORD PH1 PH2 ...`` per line, e.g. a Kaldi ``lexicon.txt``) for
    words CMUdict lacks; without it, an utterance with such a word is phone-loop decoded."""
    model: str = ""
    """neural: the trained classifier (run folder or its ``model.pt``); kmeans: the units file (``.npz``),
    fitted from a sample of the shards when it does not exist yet."""
    units: int = 64
    """kmeans: number of acoustic units (the field's number of classes)."""
    sample_frames: int = 200000
    """kmeans: speech frames sampled across the shards to fit the units."""
    seed: int = 0
    """kmeans: seed of the frame sample and of the initialisation (same seed, same units)."""
    batch_frames: int = 50000
    """neural: frames per forward pass of the classifier (utterances are padded into batches up to this)."""
    reference: str = ""
    """An existing phone field (e.g. pocketsphinx's) to score this one against: the summary reports frame
    agreement with it over the utterances that field force-aligned."""

    def validate(self) -> None:
        from ..preprocess.phones import SOURCES

        _require(
            self.source in SOURCES or not self.source,
            "source",
            f"must be one of {sorted(SOURCES)} or empty, got {self.source!r}",
        )
        _require(self.field.isidentifier(), "field", f"must be an identifier, got {self.field!r}")
        _require(
            self.source not in ("neural", "kmeans") or bool(self.model), "model", "needed by this source"
        )
        _require(2 <= self.units <= 255, "units", "must be in [2, 255] (hard labels are uint8)")
        _require(self.sample_frames >= self.units, "sample_frames", "must be >= units")
        _require(self.batch_frames >= 1000, "batch_frames", "must be >= 1000")
        _require(self.reference != self.field, "reference", "must name another field")


@dataclass
class PreprocessConfig:
    shards: list[str] = field(default_factory=list)
    """Shard set roots (local or ``s3://``) whose audio shards get feature and phone shards."""
    ray_address: str = ""
    """Ray cluster to join; empty means ``RAY_ADDRESS`` from the environment, else a local cluster."""
    num_cpus: int = 0
    """CPUs of the local cluster (0: all of this machine); ignored when joining a cluster."""
    overwrite: list[str] = field(default_factory=list)
    """Fields to recompute even where finished, e.g. ``[nn]`` (by default a rerun skips finished shards; the
    fbank field is recomputed only if named)."""
    features: FeatureConfig = field(default_factory=FeatureConfig)
    """Filterbank and VAD settings."""
    phones: PhoneConfig = field(default_factory=PhoneConfig)
    """Phone source settings."""

    def validate(self) -> None:
        _require(self.num_cpus >= 0, "num_cpus", "must be >= 0")
        fields = {"fbank", self.phones.field} if self.phones.source else {"fbank"}
        _require(set(self.overwrite) <= fields, "overwrite", f"fields this run computes: {sorted(fields)}")


@dataclass
class ModelConfig:
    channels: int = 512
    """Width of the TDNN frame layers (Kaldi x-vector: 512)."""
    stats_channels: int = 1500
    """Width of the last frame layer, whose outputs are pooled (Kaldi x-vector: 1500)."""
    embed_dim: int = 512
    """Embedding size (the first segment layer's affine output)."""
    decoder_channels: int = 512
    """Width of the decoder's frame layers."""
    decoder_layers: int = 3
    """Frame layers in the decoder."""
    decoder_kernel: int = 3
    """Kernel (context) of each decoder frame layer, frames."""
    classifier_layers: int = 1
    """Hidden segment layers between embedding and speaker softmax (Kaldi: 1)."""

    def validate(self) -> None:
        for name in ("channels", "stats_channels", "embed_dim", "decoder_channels"):
            _require(getattr(self, name) >= 8, name, "must be >= 8")
        _require(self.decoder_layers >= 1, "decoder_layers", "must be >= 1")
        _require(self.decoder_kernel % 2 == 1, "decoder_kernel", "must be odd (centred context)")
        _require(self.classifier_layers >= 0, "classifier_layers", "must be >= 0")


@dataclass
class DataConfig:
    source_frames: int = 200
    """Frames of the source segment that the extractor embeds."""
    target_frames: int = 100
    """Frames of the target segment that the decoder reconstructs (disjoint from the source)."""
    vad: bool = True
    """Drop frames the energy VAD marked as non-speech before cutting segments and embedding."""
    cmn_window: int = 0
    """Mean normalisation window, frames; 0 subtracts the whole utterance's mean (Kaldi x-vector: 300)."""
    shuffle_buffer: int = 2000
    """Samples held in the shuffle buffer of each loader worker."""
    num_workers: int = 1
    """Data loader worker processes per rank (0: load in the training process)."""

    def validate(self) -> None:
        _require(self.source_frames >= 10, "source_frames", "must be >= 10")
        _require(self.target_frames >= 1, "target_frames", "must be >= 1")
        _require(self.cmn_window >= 0, "cmn_window", "must be >= 0")
        _require(self.shuffle_buffer >= 0, "shuffle_buffer", "must be >= 0")
        _require(self.num_workers >= 0, "num_workers", "must be >= 0")


@dataclass
class OptimConfig:
    lr: float = 1e-3
    """Peak learning rate (AdamW)."""
    min_lr_ratio: float = 0.05
    """Final learning rate of the cosine schedule, as a fraction of ``lr``."""
    warmup_steps: int = 100
    """Linear warm-up steps."""
    schedule: Literal["cosine", "constant"] = "cosine"
    """Learning-rate schedule after warm-up."""
    weight_decay: float = 1e-2
    """Decoupled weight decay."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """Adam betas."""

    def validate(self) -> None:
        _require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        _require(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "must be in [0, 1]")
        _require(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        _require(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        _require(
            len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas", "two values in [0, 1)"
        )


@dataclass
class DeepSpeedConfig:
    zero_stage: int = 1
    """ZeRO stage: 0 (plain data parallel), 1 (shard optimizer state) or 2 (+ gradients)."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Training precision: fp32 on CPU; bf16 on GPUs that have it."""
    micro_batch: int = 64
    """Segment pairs per rank per forward pass."""
    grad_accum: int = 1
    """Micro-batches accumulated per optimizer step."""
    grad_clip: float = 5.0
    """Global gradient-norm clipping (0 disables)."""
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    """Collective backend; ``auto`` is NCCL when CUDA is present, else gloo."""
    fused_adam: bool = False
    """Use DeepSpeed's fused (compiled) Adam on GPU instead of torch's AdamW."""

    def validate(self) -> None:
        _require(self.zero_stage in (0, 1, 2), "zero_stage", "must be 0, 1 or 2 (stage 3 buys nothing here)")
        _require(self.micro_batch >= 2, "micro_batch", "must be >= 2 (batch norm)")
        _require(self.grad_accum >= 1, "grad_accum", "must be >= 1")
        _require(self.grad_clip >= 0, "grad_clip", "must be >= 0")


@dataclass
class MetricsConfig:
    address: str = "127.0.0.1"
    """Address the Prometheus exporter binds (loopback by default; ``0.0.0.0`` in a pod)."""
    port: int = 0
    """Exporter port of local rank 0 (rank r uses port + r); 0 disables the exporter."""

    def validate(self) -> None:
        _require(0 <= self.port < 65536, "port", "must be in [0, 65535]")


@dataclass
class TrainConfig:
    shards: list[str] = field(default_factory=list)
    """Shard set roots to train on (they need the fbank field and, for reconstruction, the phone field)."""
    output: str = "runs/default"
    """Run folder: checkpoints, exported model, metrics log and loss curves."""
    mode: Literal["ssl", "supervised", "multitask", "semi", "phones"] = "ssl"
    """ssl: reconstruction only; supervised: speaker CE only; multitask: CE + recon_weight x reconstruction;
    semi: like multitask, but CE only on samples whose speaker is labelled; phones: a frame phone classifier
    (the ``neural`` phone source) trained on the force-aligned utterances of ``phones_field``."""
    recon_weight: float = 1.0
    """lambda, the reconstruction loss weight in multitask and semi modes."""
    labelled_speakers: str = ""
    """semi mode: file of speaker ids whose labels may be used; every other sample counts as unlabelled."""
    phones_field: str = "phones"
    """Per-field shard the decoder's phone conditioning is read from; empty trains without phone conditioning
    (the ablation: the decoder sees only the embedding)."""
    steps: int = 1000
    """Optimizer steps to train for (the same on every rank)."""
    seed: int = 0
    """Seed for initialisation and data order."""
    resume: bool = False
    """Continue from the latest checkpoint in ``output``."""
    checkpoint_every: int = 500
    """Save a checkpoint every this many steps (and at the end)."""
    keep_checkpoints: int = 2
    """Checkpoints kept; older ones are deleted."""
    log_every: int = 20
    """Log losses and throughput every this many steps."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Extractor, decoder and classifier sizes."""
    data: DataConfig = field(default_factory=DataConfig)
    """Segments and the loader."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and learning-rate schedule."""
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)
    """Engine settings the ``ds_config`` is generated from."""
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    """Prometheus exporter."""

    def validate(self) -> None:
        _require(self.steps >= 1, "steps", "must be >= 1")
        _require(self.recon_weight >= 0, "recon_weight", "must be >= 0")
        _require(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
        _require(self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1")
        _require(self.log_every >= 1, "log_every", "must be >= 1")
        _require(
            self.mode != "semi" or bool(self.labelled_speakers),
            "labelled_speakers",
            "semi mode needs a file of labelled speakers",
        )
        _require(self.mode != "phones" or bool(self.phones_field), "phones_field", "phones mode needs labels")


@dataclass
class EmbedConfig:
    method: Literal["model", "random_init", "mfcc_stats"] = "model"
    """model: a trained checkpoint; random_init: the same model untrained (train.model, train.seed);
    mfcc_stats: mean and standard deviation of MFCCs (a no-training baseline)."""
    checkpoint: str = ""
    """Run folder of ``train`` (or its ``model.pt``), for method=model."""
    shards: list[str] = field(default_factory=list)
    """Shard set roots whose utterances are embedded (every utterance, once)."""
    output: str = ""
    """Embeddings file (``.npz`` with ``keys`` and ``embeddings``)."""
    max_frames: int = 10000
    """Longer utterances are embedded in chunks of this many frames and averaged (Kaldi: 10000)."""
    num_ceps: int = 20
    """MFCCs per frame for method=mfcc_stats."""

    def validate(self) -> None:
        _require(self.max_frames >= 100, "max_frames", "must be >= 100")
        _require(1 <= self.num_ceps <= 128, "num_ceps", "must be in [1, 128]")


@dataclass
class ScoreConfig:
    embeddings: str = ""
    """Embeddings file from ``embed``."""
    trials: str = ""
    """Trial list: ``label enroll test`` (label 1/0 or target/nontarget) or ``enroll test target|nontarget``."""
    output: str = ""
    """Metrics JSON (EER, minDCF); a DET curve PNG is written beside it."""
    mean_subtraction: bool = True
    """Subtract the mean of the scored embeddings before cosine scoring."""
    p_target: float = 0.01
    """Target prior of the detection cost."""

    def validate(self) -> None:
        _require(0 < self.p_target < 1, "p_target", "must be in (0, 1)")


@dataclass
class DemoConfig:
    workdir: str = "runs/demo"
    """Folder for the demo's corpus, shards, run and report."""
    nproc: int = 2
    """Training processes (ranks) started under torchrun."""

    def validate(self) -> None:
        _require(self.nproc >= 1, "nproc", "must be >= 1")


@dataclass
class ExperimentConfig:
    synth: SynthConfig = field(default_factory=SynthConfig)
    """The embedded synthetic corpus."""
    shard: ShardConfig = field(default_factory=ShardConfig)
    """Audio to WebDataset shards."""
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    """Features and phones, on Ray."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Model training, on DeepSpeed."""
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    """Embedding extraction."""
    score: ScoreConfig = field(default_factory=ScoreConfig)
    """Trial scoring."""
    demo: DemoConfig = field(default_factory=DemoConfig)
    """The end-to-end demo."""
