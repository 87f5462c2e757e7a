"""The experiment configuration: one typed section per stage, one docstring per field.

A YAML file in ``configs/`` sets any subset of these fields; the command line overrides them. Every stage and the
Kubernetes launcher read the same :class:`ExperimentConfig`, so nothing is copied between YAML and code.
"""

from __future__ import annotations

import re
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
    metrics: MetricsConfig = field(default_factory=lambda: MetricsConfig())  # defined further down
    """Prometheus exporter of the driver: utterances done and failed, seconds per shard."""

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


NOISE_SHAPES = ("speech", "white", "pink", "brown")


@dataclass
class NoiseAugmentConfig:
    prob: float = 0.0
    """Probability that an utterance's source copy gets additive noise (0 disables)."""
    snr_db_min: float = 0.0
    """Lowest signal-to-noise ratio, dB (mel power of the utterance's frames over that of the noise)."""
    snr_db_max: float = 20.0
    """Highest signal-to-noise ratio, dB; each noisy utterance draws uniformly in [min, max]."""
    shapes: list[str] = field(default_factory=lambda: list(NOISE_SHAPES))
    """Noise spectra drawn from uniformly: speech (long-term average spectrum of recent training utterances),
    white, pink (1/f), brown (1/f^2)."""

    def validate(self) -> None:
        _require(0 <= self.prob <= 1, "prob", "must be in [0, 1]")
        _require(self.snr_db_min <= self.snr_db_max, "snr_db_min", "must be <= snr_db_max")
        _require(bool(self.shapes), "shapes", "need at least one shape")
        unknown = sorted(set(self.shapes) - set(NOISE_SHAPES))
        _require(not unknown, "shapes", f"unknown {unknown}; known: {', '.join(NOISE_SHAPES)}")


@dataclass
class ReverbAugmentConfig:
    prob: float = 0.0
    """Probability that an utterance's source copy is reverberated (0 disables)."""
    rt60_min: float = 0.2
    """Shortest reverberation time (60 dB decay) of the lowest mel band, seconds."""
    rt60_max: float = 0.8
    """Longest reverberation time, seconds; each reverberated utterance draws uniformly in [min, max]."""
    hf_ratio: float = 0.5
    """Reverberation time of the highest mel band relative to the lowest (air and wall absorption)."""
    drr_db_min: float = 0.0
    """Lowest direct-to-reverberant energy ratio, dB."""
    drr_db_max: float = 12.0
    """Highest direct-to-reverberant energy ratio, dB."""

    def validate(self) -> None:
        _require(0 <= self.prob <= 1, "prob", "must be in [0, 1]")
        _require(0 < self.rt60_min <= self.rt60_max <= 5, "rt60_min", "need 0 < rt60_min <= rt60_max <= 5")
        _require(0 < self.hf_ratio <= 1, "hf_ratio", "must be in (0, 1]")
        _require(self.drr_db_min <= self.drr_db_max, "drr_db_min", "must be <= drr_db_max")


@dataclass
class MaskAugmentConfig:
    prob: float = 0.0
    """Probability that a source segment gets SpecAugment time and frequency masks (0 disables)."""
    time_masks: int = 2
    """Time masks per masked segment."""
    max_time_width: int = 10
    """Widest time mask, frames (each width is uniform in [0, max])."""
    freq_masks: int = 2
    """Frequency masks per masked segment."""
    max_freq_width: int = 5
    """Widest frequency mask, mel bins."""

    def validate(self) -> None:
        _require(0 <= self.prob <= 1, "prob", "must be in [0, 1]")
        for name in ("time_masks", "max_time_width", "freq_masks", "max_freq_width"):
            _require(getattr(self, name) >= 0, name, "must be >= 0")


@dataclass
class AugmentConfig:
    noise: NoiseAugmentConfig = field(default_factory=NoiseAugmentConfig)
    """Additive noise, in the mel power domain, before mean normalisation."""
    reverb: ReverbAugmentConfig = field(default_factory=ReverbAugmentConfig)
    """Reverberation approximated per mel band: exponential-decay smearing of the frame powers."""
    masks: MaskAugmentConfig = field(default_factory=MaskAugmentConfig)
    """SpecAugment masks on the mean-normalised source segment (masked values set to 0, the mean)."""
    target: Literal["clean", "same", "independent"] = "clean"
    """What the target is cut from: the clean utterance (default: recording conditions cannot help the decoder);
    the source's augmented copy (the shortcut, as an ablation); an independently augmented copy."""


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
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Feature-domain augmentation of the source segment (all off by default)."""

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
    timeout_s: float = 600.0
    """Longest wait in a collective (and the rendezvous) before a rank fails: a dead peer ends the job instead
    of hanging it (on one node torchrun stops the other ranks at once; this bounds the multi-node case)."""

    def validate(self) -> None:
        _require(self.zero_stage in (0, 1, 2), "zero_stage", "must be 0, 1 or 2 (stage 3 buys nothing here)")
        _require(self.micro_batch >= 2, "micro_batch", "must be >= 2 (batch norm)")
        _require(self.grad_accum >= 1, "grad_accum", "must be >= 1")
        _require(self.grad_clip >= 0, "grad_clip", "must be >= 0")
        _require(self.timeout_s > 0, "timeout_s", "must be > 0")


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
    """File of speaker ids whose labels may be used; every other sample counts as unlabelled. Required in semi
    mode; in supervised and multitask modes it keeps the labels of other shard sets out (e.g. a corpus used
    only as unlabelled reconstruction data); empty: every labelled speaker in the shards."""
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
    checkpoint_staging: str = ""
    """Node-local folder DeepSpeed saves to when ``output`` is on an object store (checkpoints are uploaded from
    there, and downloaded there to resume); empty: a folder under the system's temporary directory."""
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
    """Embeddings file (``.npz`` with ``keys``, ``speakers`` ("" where unknown) and ``embeddings``)."""
    onnx: str = ""
    """Also export the extractor with its frontend as an ONNX graph here (raw log-mel + VAD in, embedding out;
    methods model and random_init), checked against this stage's embeddings; empty: no export."""
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
    backend: Literal["cosine", "plda"] = "cosine"
    """cosine: cosine similarity; plda: Kaldi's recipe (training mean, LDA, length norm, two-covariance PLDA)
    trained on ``train_embeddings``."""
    mean_subtraction: bool = True
    """cosine: subtract the mean of the scored embeddings first (plda always subtracts the training mean)."""
    train_embeddings: str = ""
    """Embeddings of labelled training speakers (``embed`` output with speakers) for LDA and PLDA."""
    lda_dim: int = 200
    """LDA output dimension (Kaldi: 200), capped at min(embedding dim, training speakers - 1); 0 skips LDA."""
    plda_iterations: int = 10
    """EM iterations of the PLDA model (Kaldi: 10)."""
    score_norm: Literal["none", "asnorm"] = "none"
    """Score normalisation: none, or adaptive symmetric normalisation against a cohort (AS-norm)."""
    cohort_embeddings: str = ""
    """asnorm cohort (``embed`` output of speakers disjoint from the trials); empty: ``train_embeddings``."""
    cohort_size: int = 300
    """asnorm: top-N highest cohort scores per utterance whose statistics normalise it (wespeaker: 300)."""
    cohort_speaker_means: bool = True
    """asnorm: average the cohort's embeddings per labelled speaker first (as wespeaker does)."""
    p_target: float = 0.01
    """Target prior of the detection cost."""

    def validate(self) -> None:
        _require(0 < self.p_target < 1, "p_target", "must be in (0, 1)")
        _require(self.lda_dim >= 0, "lda_dim", "must be >= 0")
        _require(self.plda_iterations >= 0, "plda_iterations", "must be >= 0")
        _require(self.cohort_size >= 2, "cohort_size", "must be >= 2 (a standard deviation)")


@dataclass
class DemoConfig:
    workdir: str = "runs/demo"
    """Folder for the demo's corpus, shards, run and report."""
    nproc: int = 2
    """Training processes (ranks) started under torchrun."""

    def validate(self) -> None:
        _require(self.nproc >= 1, "nproc", "must be >= 1")


_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Credentials reach pods only through the S3 Secret (by reference), never as plain values in a manifest.
_SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "ACCESS_KEY", "CREDENTIAL")


def _require_quantity(value: str, name: str) -> None:
    _require(
        bool(_QUANTITY.match(value)), name, f"not a Kubernetes quantity (e.g. 64Gi, 500M), got {value!r}"
    )


@dataclass
class TrainLaunchConfig:
    nodes: int = 1
    """Pods (nodes) of the PyTorchJob: one Master and ``nodes - 1`` Workers, one torchrun per pod."""
    gpus_per_node: int = 0
    """GPUs each pod requests (``nvidia.com/gpu``); 0 trains on CPUs."""
    procs_per_node: int = 0
    """Ranks torchrun starts per pod; 0: one per GPU (one on a CPU pod)."""
    cpus_per_node: int = 8
    """CPU cores each pod requests (and is limited to)."""
    memory_per_node: str = "64Gi"
    """Memory each pod requests (and is limited to), a Kubernetes quantity."""
    shm_size: str = "16Gi"
    """Size of the in-memory ``/dev/shm`` of each pod (data loader workers pass batches through it)."""
    scratch_size: str = "50Gi"
    """Size of each pod's local ``/scratch`` volume, where checkpoints are staged before upload."""
    min_nodes: int = 0
    """Elastic training: fewest pods the job may shrink to (torchrun ``--nnodes min:max``); 0 is a fixed-size
    job. Needs ``train.deepspeed.zero_stage: 0``: DeepSpeed cannot re-partition ZeRO-1/2 optimizer state for
    another world size."""
    max_nodes: int = 0
    """Elastic training: most pods the job may grow to (0: ``nodes``)."""
    restart_policy: Literal["OnFailure", "ExitCode", "Never"] = "OnFailure"
    """What the training operator does with a failed pod; the restarted pod resumes from the latest checkpoint."""
    backoff_limit: int = 3
    """Pod restarts before the whole job is marked failed."""
    max_restarts: int = 3
    """Restarts of the worker group by torchrun inside a pod (after a rank died) before the pod fails."""
    rdzv_port: int = 29400
    """Port of the c10d rendezvous store, hosted by the first pod."""
    active_deadline_seconds: int = 0
    """Seconds the job may run before it is stopped (0: no limit)."""

    def validate(self) -> None:
        _require(self.nodes >= 1, "nodes", "must be >= 1")
        for name in (
            "gpus_per_node",
            "procs_per_node",
            "backoff_limit",
            "max_restarts",
            "active_deadline_seconds",
        ):
            _require(getattr(self, name) >= 0, name, "must be >= 0")
        _require(self.cpus_per_node >= 1, "cpus_per_node", "must be >= 1")
        for name in ("memory_per_node", "shm_size", "scratch_size"):
            _require_quantity(getattr(self, name), name)
        _require(
            self.min_nodes >= 0 and self.max_nodes >= 0, "min_nodes", "min_nodes and max_nodes must be >= 0"
        )
        if self.min_nodes or self.max_nodes:
            top = self.max_nodes or self.nodes
            _require(
                1 <= self.min_nodes <= self.nodes <= top,
                "min_nodes",
                "need 1 <= min_nodes <= nodes <= max_nodes",
            )
        _require(1024 <= self.rdzv_port < 65536, "rdzv_port", "must be in [1024, 65535]")


@dataclass
class RayLaunchConfig:
    head_cpus: int = 2
    """CPU cores of the Ray head pod, where the ``sse-dist preprocess`` driver runs (no shard tasks run there)."""
    head_memory: str = "8Gi"
    """Memory of the Ray head pod."""
    workers: int = 2
    """Pods of the CPU worker group; each runs one shard task per core."""
    worker_cpus: int = 8
    """CPU cores of each CPU worker pod."""
    worker_memory: str = "32Gi"
    """Memory of each CPU worker pod."""
    gpu_workers: int = 0
    """Pods of the GPU worker group (0: none); give them to a phone source that runs a neural classifier."""
    gpus_per_worker: int = 1
    """GPUs of each GPU worker pod."""
    gpu_worker_cpus: int = 8
    """CPU cores of each GPU worker pod."""
    gpu_worker_memory: str = "32Gi"
    """Memory of each GPU worker pod."""
    backoff_limit: int = 2
    """Retries of the whole Ray job on a fresh cluster; safe, since finished shards are skipped."""
    active_deadline_seconds: int = 0
    """Seconds the job may run before KubeRay stops it (0: no limit)."""
    ttl_seconds_after_finished: int = 300
    """Seconds the Ray cluster stays up after the job finished (for its logs), then it is deleted."""

    def validate(self) -> None:
        _require(self.head_cpus >= 1, "head_cpus", "must be >= 1")
        _require(self.workers >= 0 and self.gpu_workers >= 0, "workers", "worker counts must be >= 0")
        _require(self.workers + self.gpu_workers >= 1, "workers", "need at least one CPU or GPU worker pod")
        _require(self.gpus_per_worker >= 1, "gpus_per_worker", "must be >= 1")
        _require(min(self.worker_cpus, self.gpu_worker_cpus) >= 1, "worker_cpus", "worker pods need >= 1 CPU")
        for name in ("head_memory", "worker_memory", "gpu_worker_memory"):
            _require_quantity(getattr(self, name), name)
        for name in ("backoff_limit", "active_deadline_seconds", "ttl_seconds_after_finished"):
            _require(getattr(self, name) >= 0, name, "must be >= 0")


@dataclass
class LaunchConfig:
    name: str = "sse-dist"
    """Prefix of the Kubernetes objects: ``<name>-train`` (PyTorchJob), ``<name>-preprocess`` (RayJob), each
    with a ``-config`` ConfigMap holding the resolved experiment config."""
    namespace: str = "sse-dist"
    """Namespace the jobs run in (``k8s/`` creates it, with the service account and the monitoring objects)."""
    image: str = "sse-dist:0.1.0"
    """Container image built from the repository's Dockerfile (pushed to a registry the cluster pulls from)."""
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"
    """When the kubelet pulls the image."""
    image_pull_secret: str = ""
    """Secret with the registry credentials, if the registry needs them."""
    service_account: str = "sse-dist"
    """Service account of the job pods (``k8s/base`` creates it; it has no API permissions)."""
    s3_secret: str = "sse-dist-s3"
    """Secret with keys ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``, passed to the pods by reference;
    empty: pods get no keys (IAM roles for service accounts, workload identity)."""
    s3_endpoint: str = ""
    """S3 endpoint URL for a store other than AWS (MinIO, Ceph, ...), set as ``FSSPEC_S3_ENDPOINT_URL``."""
    env: list[str] = field(default_factory=list)
    """Extra ``NAME=value`` variables of every container (e.g. ``NCCL_SOCKET_IFNAME=eth0``); never credentials."""
    node_selector: list[str] = field(default_factory=list)
    """``key=value`` node labels the pods must run on (e.g. ``nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3``)."""
    tolerations: list[str] = field(default_factory=list)
    """Taints the pods tolerate, as ``key=value:Effect`` or ``key:Effect`` (e.g. ``nvidia.com/gpu:NoSchedule``)."""
    priority_class: str = ""
    """PriorityClass of the pods (empty: the cluster default)."""
    run_as_user: int = 1000
    """Non-root user (and group) id the containers run as; the Dockerfile's ``UID`` build argument."""
    metrics_port: int = 9400
    """Port of the Prometheus exporters in the pods: the training ranks use it + local rank, the Ray driver it."""
    kubernetes_version: str = "1.30"
    """Kubernetes API version the rendered manifests are validated against."""
    output: str = "runs/k8s"
    """Folder ``--dry-run`` writes the manifests to (one subfolder per job)."""
    train: TrainLaunchConfig = field(default_factory=TrainLaunchConfig)
    """The training PyTorchJob."""
    preprocess: RayLaunchConfig = field(default_factory=RayLaunchConfig)
    """The preprocessing RayJob."""

    def validate(self) -> None:
        for name in ("name", "namespace"):
            _require(
                bool(_DNS1035.match(getattr(self, name))), name, "must be a DNS-1035 label (a-z, 0-9, '-')"
            )
        # KubeRay refuses RayJob names over 47 characters; "-preprocess" is the longest suffix.
        _require(len(self.name) <= 36, "name", "must have at most 36 characters")
        _require(bool(self.image), "image", "must name a container image")
        _require(self.run_as_user > 0, "run_as_user", "must be a non-root uid (> 0)")
        _require(1024 <= self.metrics_port < 65000, "metrics_port", "must be in [1024, 65000)")
        _require(bool(re.match(r"^1\.\d+$", self.kubernetes_version)), "kubernetes_version", "like 1.30")
        for item in self.env:
            key, sep, _ = item.partition("=")
            _require(bool(sep and _ENV_NAME.match(key)), "env", f"{item!r} is not NAME=value")
            _require(
                not any(w in key.upper() for w in _SECRET_WORDS), "env", f"{key} looks like a credential"
            )
        for item in self.node_selector:
            _require("=" in item, "node_selector", f"{item!r} is not key=value")
        for item in self.tolerations:
            _require(
                bool(re.match(r"^[^=:]+(=[^:]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$", item)),
                "tolerations",
                f"{item!r} is not key[=value]:NoSchedule|PreferNoSchedule|NoExecute",
            )


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
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    """Kubernetes jobs for preprocess and train (``sse-dist launch``)."""
