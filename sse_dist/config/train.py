"""Training configuration: the model, the input pipeline and its augmentation, the optimiser, the DeepSpeed
engine and the metrics exporter (``train.*`` in an experiment file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .loader import require
from .metrics import MetricsConfig


@dataclass
class ModelConfig:
    arch: Literal["tdnn", "ecapa"] = "tdnn"
    """Extractor: the x-vector TDNN (Snyder et al. 2018, the paper's) or ECAPA-TDNN (Desplanques et al. 2020:
    SE-Res2Net blocks, multi-layer aggregation, attentive statistics pooling)."""
    channels: int = 512
    """Width of the TDNN frame layers (Kaldi x-vector: 512); ECAPA: the SE-Res2Net block width (512 or 1024)."""
    stats_channels: int = 1500
    """Width of the last frame layer, whose outputs are pooled (Kaldi x-vector: 1500; ECAPA: the multi-layer
    aggregation, 1536)."""
    res2net_scale: int = 8
    """ECAPA: Res2Net groups per block (``channels`` must divide by it)."""
    se_channels: int = 128
    """ECAPA: bottleneck of the squeeze-and-excitation gates."""
    attention_channels: int = 128
    """ECAPA: hidden width of the attentive statistics pooling."""
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
    input_norm: bool = False
    """Global mean and variance normalisation of the features, learned from the training data (a batch norm
    without affine at the extractor's input, its running statistics exported with it); the decoder's target is
    normalised with the same statistics. Meant for ``data.cmn_window: -1``, which keeps each utterance's mean."""

    def validate(self) -> None:
        for name in ("channels", "stats_channels", "embed_dim", "decoder_channels"):
            require(getattr(self, name) >= 8, name, "must be >= 8")
        require(self.decoder_layers >= 1, "decoder_layers", "must be >= 1")
        require(self.decoder_kernel % 2 == 1, "decoder_kernel", "must be odd (centred context)")
        require(self.classifier_layers >= 0, "classifier_layers", "must be >= 0")
        require(self.res2net_scale >= 2, "res2net_scale", "must be >= 2")
        require(
            self.arch != "ecapa" or self.channels % self.res2net_scale == 0,
            "channels",
            f"ECAPA needs channels divisible by res2net_scale ({self.res2net_scale})",
        )
        for name in ("se_channels", "attention_channels"):
            require(getattr(self, name) >= 1, name, "must be >= 1")


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
        require(0 <= self.prob <= 1, "prob", "must be in [0, 1]")
        require(self.snr_db_min <= self.snr_db_max, "snr_db_min", "must be <= snr_db_max")
        require(bool(self.shapes), "shapes", "need at least one shape")
        unknown = sorted(set(self.shapes) - set(NOISE_SHAPES))
        require(not unknown, "shapes", f"unknown {unknown}; known: {', '.join(NOISE_SHAPES)}")


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
        require(0 <= self.prob <= 1, "prob", "must be in [0, 1]")
        require(0 < self.rt60_min <= self.rt60_max <= 5, "rt60_min", "need 0 < rt60_min <= rt60_max <= 5")
        require(0 < self.hf_ratio <= 1, "hf_ratio", "must be in (0, 1]")
        require(self.drr_db_min <= self.drr_db_max, "drr_db_min", "must be <= drr_db_max")


@dataclass
class NarrowbandAugmentConfig:
    prob: float = 0.0
    """Probability that an utterance's source copy is band-limited to telephone bandwidth (0 disables), as
    audio resampled through 8 kHz or sent over a phone line would be."""
    low_hz_min: float = 200.0
    """Lowest high-pass corner, Hz; each band-limited utterance draws uniformly in [low_hz_min, low_hz_max]."""
    low_hz_max: float = 400.0
    """Highest high-pass corner, Hz."""
    high_hz_min: float = 3200.0
    """Lowest low-pass corner, Hz (an 8 kHz channel cuts below its 4 kHz Nyquist frequency)."""
    high_hz_max: float = 3800.0
    """Highest low-pass corner, Hz."""
    order: int = 12
    """Butterworth order of both edges (72 dB per octave: the low-pass of a resampler is steep)."""
    stopband_db: float = 50.0
    """Attenuation outside the band, dB: what is left there is at this level below the speech."""

    def validate(self) -> None:
        require(0 <= self.prob <= 1, "prob", "must be in [0, 1]")
        require(0 <= self.low_hz_min <= self.low_hz_max, "low_hz_min", "need 0 <= low_hz_min <= low_hz_max")
        require(self.low_hz_max < self.high_hz_min, "high_hz_min", "must be above low_hz_max")
        require(self.high_hz_min <= self.high_hz_max, "high_hz_min", "must be <= high_hz_max")
        require(self.order >= 1, "order", "must be >= 1")
        require(self.stopband_db > 0, "stopband_db", "must be > 0")


@dataclass
class EqAugmentConfig:
    prob: float = 0.0
    """Probability that an utterance's source copy passes through a random device equaliser (0 disables): a
    smooth gain curve over the mel bands, as a different microphone or codec colours speech. Constant over the
    utterance, so a whole-utterance mean normalisation removes it: it matters where the mean is kept
    (``cmn_window: -1``), and keeps the source's colouring from predicting the target's recording channel."""
    max_db: float = 10.0
    """Largest excursion of the gain curve, dB; each equalised utterance draws its peak uniformly in [0, max]."""
    terms: int = 4
    """Cosine terms of the curve over the mel axis (more: bumpier curves); term k's weight falls as 1/k."""

    def validate(self) -> None:
        require(0 <= self.prob <= 1, "prob", "must be in [0, 1]")
        require(self.max_db >= 0, "max_db", "must be >= 0")
        require(self.terms >= 1, "terms", "must be >= 1")


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
        require(0 <= self.prob <= 1, "prob", "must be in [0, 1]")
        for name in ("time_masks", "max_time_width", "freq_masks", "max_freq_width"):
            require(getattr(self, name) >= 0, name, "must be >= 0")


@dataclass
class AugmentConfig:
    noise: NoiseAugmentConfig = field(default_factory=NoiseAugmentConfig)
    """Additive noise, in the mel power domain, before mean normalisation."""
    reverb: ReverbAugmentConfig = field(default_factory=ReverbAugmentConfig)
    """Reverberation approximated per mel band: exponential-decay smearing of the frame powers."""
    eq: EqAugmentConfig = field(default_factory=EqAugmentConfig)
    """A random device equaliser, after reverberation and noise (the microphone hears both)."""
    narrowband: NarrowbandAugmentConfig = field(default_factory=NarrowbandAugmentConfig)
    """Telephone band-limiting, per mel band, after reverberation and noise (both pass through the channel)."""
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
    """Mean normalisation window, frames; 0 subtracts the whole utterance's mean (Kaldi x-vector: 300); -1 none:
    the long-term spectral envelope (voice and channel, what MFCC mean statistics score on) stays in the source
    and in the decoder's target, so the reconstruction objective has the embedding carry it."""
    shuffle_buffer: int = 2000
    """Samples held in the shuffle buffer of each loader worker."""
    num_workers: int = 1
    """Data loader worker processes per rank (0: load in the training process)."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Feature-domain augmentation of the source segment (all off by default)."""

    def validate(self) -> None:
        require(self.source_frames >= 10, "source_frames", "must be >= 10")
        require(self.target_frames >= 1, "target_frames", "must be >= 1")
        require(self.cmn_window >= -1, "cmn_window", "must be >= -1 (-1: no mean normalisation)")
        require(self.shuffle_buffer >= 0, "shuffle_buffer", "must be >= 0")
        require(self.num_workers >= 0, "num_workers", "must be >= 0")


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
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "must be in [0, 1]")
        require(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        require(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas", "two values in [0, 1)")


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
        require(self.zero_stage in (0, 1, 2), "zero_stage", "must be 0, 1 or 2 (stage 3 buys nothing here)")
        require(self.micro_batch >= 2, "micro_batch", "must be >= 2 (batch norm)")
        require(self.grad_accum >= 1, "grad_accum", "must be >= 1")
        require(self.grad_clip >= 0, "grad_clip", "must be >= 0")
        require(self.timeout_s > 0, "timeout_s", "must be > 0")


@dataclass
class TrainConfig:
    shards: list[str] = field(default_factory=list)
    """Shard set roots to train on (they need the fbank field and, for reconstruction, the phone field)."""
    output: str = "runs/default"
    """Run folder: checkpoints, exported model, metrics log and loss curves."""
    mode: Literal["ssl", "contrastive", "supervised", "multitask", "semi", "phones"] = "ssl"
    """ssl: reconstruction only; contrastive: the contrastive loss between two segments of each utterance
    only; supervised: speaker CE only; multitask: CE + recon_weight x reconstruction; semi: like multitask, but
    CE only on samples whose speaker is labelled; phones: a frame phone classifier (the ``neural`` phone
    source) trained on the force-aligned utterances of ``phones_field``."""
    recon_weight: float = 1.0
    """lambda, the reconstruction loss weight in multitask and semi modes."""
    contrastive_weight: float = 0.0
    """Weight of the contrastive loss (source vs target segment of each utterance, the other utterances of the
    all-ranks batch as negatives) added to the losses of the ssl, supervised, multitask and semi modes; the
    contrastive mode uses it alone with weight 1. 0: off."""
    contrastive_temperature: float = 0.1
    """Temperature of the contrastive loss's cosine similarities."""
    head: Literal["softmax", "aam"] = "softmax"
    """Speaker classifier of the CE modes: Kaldi's segment layers and softmax, or an additive angular margin
    softmax (AAM / ArcFace) on the embedding itself."""
    aam_margin: float = 0.2
    """AAM: angular margin added to the target speaker's angle, radians."""
    aam_scale: float = 30.0
    """AAM: scale of the cosine logits."""
    aam_warmup_steps: int = 200
    """AAM: the margin grows linearly from 0 to aam_margin over these optimizer steps."""
    init_from: str = ""
    """Run folder or ``model.pt`` to start from: its extractor (a layer of another shape is refused) and, where
    every shape matches and the run folder has a checkpoint, its decoder; classifier and optimizer start fresh.
    Empty: random initialisation."""
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
        require(self.steps >= 1, "steps", "must be >= 1")
        require(self.recon_weight >= 0, "recon_weight", "must be >= 0")
        require(self.contrastive_weight >= 0, "contrastive_weight", "must be >= 0")
        require(self.contrastive_temperature > 0, "contrastive_temperature", "must be > 0")
        require(0 <= self.aam_margin < 1.5, "aam_margin", "must be in [0, 1.5) radians")
        require(self.aam_scale > 0, "aam_scale", "must be > 0")
        require(self.aam_warmup_steps >= 0, "aam_warmup_steps", "must be >= 0")
        require(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
        require(self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1")
        require(self.log_every >= 1, "log_every", "must be >= 1")
        require(
            self.mode != "semi" or bool(self.labelled_speakers),
            "labelled_speakers",
            "semi mode needs a file of labelled speakers",
        )
        require(self.mode != "phones" or bool(self.phones_field), "phones_field", "phones mode needs labels")
