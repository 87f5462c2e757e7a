"""The experiment configuration: one typed section per stage, one docstring per field.

A YAML file in ``configs/`` sets any subset of these fields; the command line overrides them. Every stage and the
Kubernetes launcher read the same :class:`ExperimentConfig`, so nothing is copied between YAML and code. The
training (``train.py``) and launch (``launch.py``) sections live in their own modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .launch import LaunchConfig
from .loader import require
from .metrics import MetricsConfig
from .train import TrainConfig


@dataclass
class SynthConfig:
    output: str = "shards/synth"
    """Folder that receives the Kaldi data dirs ``train/`` and ``test/`` (with ``test/trials``)."""
    num_speakers: int = 64
    """Speakers in the corpus, train and test together (ignored when ``hours`` is set)."""
    hours: float = 0.0
    """Size the corpus by audio: when > 0, as many training speakers (``utts_per_speaker`` utterances each)
    as fill about this many hours, plus ``num_test_speakers`` held out; written speaker by speaker, so memory
    stays bounded at any size."""
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
    sessions_per_speaker: int = 0
    """Recording sessions per speaker: a speaker's utterances are dealt to them in turn, and the utterances of
    a session share its channel, room and noise (kind and level), as recordings of one day on one device do;
    target trials then pair only utterances of different sessions. 0: every utterance its own recording."""
    rt60_max: float = 0.0
    """Longest reverberation time of a recording's room, seconds (drawn in [0.15, rt60_max]); 0: no rooms."""
    max_trials: int = 20000
    """Trials in the list: every target pair, non-target pairs subsampled to fill the rest."""
    workers: int = 2
    """Processes that synthesise utterances in parallel."""
    seed: int = 0
    """Seed for speakers, texts and noise; the same seed gives the same corpus."""

    def validate(self) -> None:
        require(self.num_speakers >= 4, "num_speakers", "need at least 4 speakers")
        require(
            1 <= self.num_test_speakers < self.num_speakers,
            "num_test_speakers",
            f"must be in [1, num_speakers={self.num_speakers})",
        )
        require(self.utts_per_speaker >= 1, "utts_per_speaker", "must be >= 1")
        require(self.test_utts_per_speaker >= 2, "test_utts_per_speaker", "need >= 2 for target trials")
        require(
            0.5 <= self.min_duration <= self.max_duration, "min_duration", "need 0.5 <= min <= max_duration"
        )
        require(
            self.sample_rate in (8000, 16000, 22050, 24000, 32000, 44100, 48000),
            "sample_rate",
            "unusual rate",
        )
        require(self.snr_db_min <= self.snr_db_max, "snr_db_min", "must be <= snr_db_max")
        require(self.channel_db >= 0, "channel_db", "must be >= 0")
        require(self.sessions_per_speaker >= 0, "sessions_per_speaker", "must be >= 0")
        require(
            self.rt60_max == 0 or 0.15 <= self.rt60_max <= 3, "rt60_max", "0 (no rooms) or in [0.15, 3] s"
        )
        require(self.max_trials >= 1, "max_trials", "must be >= 1")
        require(self.workers >= 1, "workers", "must be >= 1")
        require(self.hours >= 0, "hours", "must be >= 0 (0: sized by num_speakers)")


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
        require(self.max_utts_per_shard >= 1, "max_utts_per_shard", "must be >= 1")
        require(self.max_shard_mb > 0, "max_shard_mb", "must be > 0")
        require(0 < self.min_duration < self.max_duration, "min_duration", "need 0 < min < max_duration")
        require(self.workers >= 1, "workers", "must be >= 1")


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
        require(self.sample_rate >= 8000, "sample_rate", "must be >= 8000")
        require(8 <= self.num_mel_bins <= 128, "num_mel_bins", "must be in [8, 128]")
        require(0 < self.frame_shift_ms <= self.frame_length_ms, "frame_shift_ms", "need 0 < shift <= length")
        require(0 <= self.preemphasis < 1, "preemphasis", "must be in [0, 1)")
        nyquist = self.sample_rate / 2
        high = self.high_freq if self.high_freq > 0 else nyquist + self.high_freq
        require(0 <= self.low_freq < high <= nyquist, "low_freq", f"need 0 <= low < high <= {nyquist}")
        require(0 <= self.vad_proportion_threshold <= 1, "vad_proportion_threshold", "must be in [0, 1]")
        require(self.vad_frames_context >= 0, "vad_frames_context", "must be >= 0")


# The phone sources a config may name, "" for none; ``tests/preprocess`` holds them equal to the registry
# ``sse_dist.preprocess.phones.SOURCES`` (config sits below the stages and does not import it).
PhoneSourceName = Literal["alignment", "pocketsphinx", "neural", "kmeans", ""]


@dataclass
class PhoneConfig:
    source: PhoneSourceName = "alignment"
    """Phone source (its code: ``sse_dist.preprocess.phones.SOURCES[source]``): ``alignment`` (the corpus's
    own time alignment), ``pocketsphinx`` (forced alignment to the transcript, else phone-loop decoding),
    ``neural`` (a frame classifier trained with ``train --mode phones``), ``kmeans`` (acoustic units, no
    recognizer); empty computes features only."""
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
    unit_model: str = ""
    """kmeans: a trained run (or its ``model.pt``) whose extractor's frame-level features the units cluster,
    as HuBERT's later iterations re-cluster the model's own features; empty: the mean-normalised log-mel frames
    (HuBERT's first iteration)."""
    unit_layer: int = 3
    """kmeans with ``unit_model``: which of the extractor's frame-level outputs to cluster, 1 = the first (the
    x-vector TDNN has 5, ECAPA-TDNN the stem, 3 blocks and the aggregation); 3 is the TDNN's last layer with
    temporal context, before the layers that shape speaker statistics."""
    batch_frames: int = 50000
    """neural: frames per forward pass of the classifier (utterances are padded into batches up to this)."""
    reference: str = ""
    """An existing phone field (e.g. pocketsphinx's) to score this one against: the summary reports frame
    agreement with it over the utterances that field force-aligned."""

    def validate(self) -> None:
        require(self.field.isidentifier(), "field", f"must be an identifier, got {self.field!r}")
        require(self.source not in ("neural", "kmeans") or bool(self.model), "model", "needed by this source")
        require(2 <= self.units <= 255, "units", "must be in [2, 255] (hard labels are uint8)")
        require(self.sample_frames >= self.units, "sample_frames", "must be >= units")
        require(not self.unit_model or self.source == "kmeans", "unit_model", "only for the kmeans source")
        require(self.unit_layer >= 1, "unit_layer", "must be >= 1 (the first frame layer)")
        require(self.batch_frames >= 1000, "batch_frames", "must be >= 1000")
        require(self.reference != self.field, "reference", "must name another field")


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
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    """Prometheus exporter of the driver: utterances done and failed, seconds per shard."""

    def validate(self) -> None:
        require(self.num_cpus >= 0, "num_cpus", "must be >= 0")
        fields = {"fbank", self.phones.field} if self.phones.source else {"fbank"}
        require(set(self.overwrite) <= fields, "overwrite", f"fields this run computes: {sorted(fields)}")


@dataclass
class EmbedConfig:
    method: Literal["model", "random_init", "mfcc_stats"] = "model"
    """model: a trained checkpoint; random_init: the same model untrained (train.model, train.seed);
    mfcc_stats: mean and standard deviation of MFCCs (a no-training baseline)."""
    checkpoint: str = ""
    """Run folder of ``train`` (or its ``model.pt``), for method=model."""
    shards: list[str] = field(default_factory=list)
    """Shard set roots whose utterances are embedded (every utterance, once)."""
    audio: str = ""
    """Instead of shards: a folder of audio, a Kaldi data dir or one audio file, run through the trained
    model's own frontend in-process (its recorded feature settings, VAD, mean normalisation; the duration
    limits of section ``shard``); the same embeddings as sharding and preprocessing it first (method=model)."""
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
        require(
            not (self.onnx and self.method == "mfcc_stats"), "onnx", "mfcc_stats has no network to export"
        )
        require(self.max_frames >= 100, "max_frames", "must be >= 100")
        require(1 <= self.num_ceps <= 128, "num_ceps", "must be in [1, 128]")
        require(not (self.audio and self.shards), "audio", "give shards or audio, not both")
        require(not self.audio or self.method == "model", "audio", "needs method=model (the run's frontend)")


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
    run: str = ""
    """The training run whose embeddings these are: records this trial list's EER threshold there
    (``calibration.json``, the decision of ``sse-dist verify`` and ``sse_dist.load``) and its EER on the run's
    model card. Cosine scoring without score normalisation only; empty: nothing is recorded."""

    def validate(self) -> None:
        require(0 < self.p_target < 1, "p_target", "must be in (0, 1)")
        calibrates = self.backend == "cosine" and self.score_norm == "none"
        require(
            not self.run or calibrates, "run", "a threshold is recorded for cosine scoring without asnorm"
        )
        require(self.lda_dim >= 0, "lda_dim", "must be >= 0")
        require(self.plda_iterations >= 0, "plda_iterations", "must be >= 0")
        require(self.cohort_size >= 2, "cohort_size", "must be >= 2 (a standard deviation)")


@dataclass
class DemoConfig:
    workdir: str = "runs/demo"
    """Folder for the demo's corpus, shards, run and report."""
    nproc: int = 2
    """Training processes (ranks) started under torchrun."""

    def validate(self) -> None:
        require(self.nproc >= 1, "nproc", "must be >= 1")


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
