"""Named experiments: a registry of config factories resolved by name, and the built-in ones.

It lives in the library (as Model Garden's experiment factories do), so library code and its
command lines resolve names without importing the project's `configs/` package. More
experiments register with `@register("name")` from any module imported before resolving.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from tfprivacy import config as C

EXPERIMENTS: dict[str, Callable[[], C.ExperimentConfig]] = {}


def register(name: str):
    """Decorator: registers a factory returning a fresh ExperimentConfig under `name`."""
    if name in EXPERIMENTS:
        raise C.ConfigError(f"experiment {name!r} is registered twice")

    def wrap(fn):
        EXPERIMENTS[name] = fn
        return fn

    return wrap


def list_experiments() -> list[str]:
    return sorted(EXPERIMENTS)


def get_config(name: str, overrides: list[str] | None = None) -> C.ExperimentConfig:
    """The named experiment with `part.field=value` overrides applied, checked."""
    if name not in EXPERIMENTS:
        raise C.ConfigError(f"unknown experiment {name!r}; known: {', '.join(list_experiments())}")
    return C.apply_overrides(EXPERIMENTS[name](), overrides)


_PHASE_FIELDS = (
    "identity_steps",
    "pretrain_target_steps",
    "pretrain_privacy_steps",
    "adversarial_steps",
    "attack_steps",
)


def _phases(trainer: C.TrainerConfig, steps: tuple[int, ...], **fields) -> C.TrainerConfig:
    """`trainer` with the phases' step counts, in phase order (identity, pretrain target,
    pretrain privacy, adversarial, attack), and any other `fields`."""
    return dataclasses.replace(trainer, **dict(zip(_PHASE_FIELDS, steps, strict=True)), **fields)


@register("benchmark")
def benchmark() -> C.ExperimentConfig:
    """The default main job: the built-in privacy video benchmark, no download.

    The game's settings (docs/method.md, "Why the game settled on a colour shift"): the
    pyramid f_d, which can only remove colour and detail; attackers strong enough to read the
    fine marks (width 16, four frames per clip, two updates per adversarial step, 800
    pretraining steps); gamma 0.5, so that the utility term holds the action while f_d
    changes; and an adaptive length (docs/results.md, "Across training seeds"): 300
    adversarial steps, then on in steps
    of 50, up to 900, until the game's own attackers have fallen halfway from raw to chance.
    """
    cfg = C.ExperimentConfig(name="benchmark")
    # 240 training-side videos kept apart as the trainer's validation set (one video moves
    # its accuracy by 0.4 points); the ruler's train and test splits are unchanged.
    cfg.data.synthetic = dataclasses.replace(cfg.data.synthetic, extra_val_videos=240)
    cfg.model = dataclasses.replace(cfg.model, degrader="pyramid", privacy_width=16)
    cfg.adversary = dataclasses.replace(cfg.adversary, gamma=0.5, privacy_frames=4, privacy_steps=2)
    # The attack phase's fresh f_b train as long as the pretrained ones whose raw figure the
    # summary compares them with (fewer steps would make f_d look better than it is).
    cfg.trainer = dataclasses.replace(
        cfg.trainer, pretrain_privacy_steps=800, attack_steps=800, adversarial_max_steps=900
    )
    # Judges every 100 adversarial steps decide the game's length and the f_d it keeps. One
    # judgement reads the action to about 3 points of raw (sd over judge seeds), so the game
    # rewinds only on a fall of more than 5 points under the bar (docs/results.md, "The judge
    # target from scratch" and "Rewinding only on a fall beyond the noise").
    cfg.judge = dataclasses.replace(cfg.judge, every=100, rewind_margin=0.05)
    return cfg


@register("benchmark_tiny")
def benchmark_tiny() -> C.ExperimentConfig:
    """Tiny shapes for tests: a few seconds per phase on one CPU core."""
    cfg = C.ExperimentConfig(name="benchmark_tiny")
    cfg.data.synthetic = C.SyntheticConfig(
        num_videos=48,
        frames_per_video=8,
        frame_size=32,
        num_images=32,
        seed=0,
        extra_test_videos=0,
    )
    cfg.data = dataclasses.replace(
        cfg.data, frame_size=32, clip_length=4, batch_size=4, shuffle_buffer=32
    )
    cfg.model = dataclasses.replace(
        cfg.model, degrader_width=4, degrader_res_blocks=1, target_width=4, privacy_width=4
    )
    cfg.trainer = _phases(
        cfg.trainer, (3, 3, 3, 4, 3), checkpoint_every=2, log_every=2, val_batches=1, progress=False
    )
    cfg.adversary = dataclasses.replace(
        cfg.adversary, restart_steps=2, max_inner_steps=2, threshold_check_every=2
    )
    cfg.eval = dataclasses.replace(
        cfg.eval, target_epochs=1, privacy_epochs=1, pretrain_epochs=1, finetune_epochs=1, seeds=1
    )
    return cfg


@register("benchmark_cross")
def benchmark_cross() -> C.ExperimentConfig:
    """Cross-dataset variant of the benchmark: action-only videos + privacy-only images."""
    cfg = C.ExperimentConfig(name="benchmark_cross")
    cfg.data.dataset = "benchmark_cross"
    return cfg


def _paper_sizes(data: C.DataConfig) -> C.DataConfig:
    """HMDB51 -> PA-HMDB51 at the paper's sizes: 112 px, 16-frame clips, batches of 8."""
    return dataclasses.replace(
        data, dataset="hmdb51_pahmdb51", frame_size=112, clip_length=16, batch_size=8
    )


@register("hmdb51_pahmdb51")
def hmdb51_pahmdb51() -> C.ExperimentConfig:
    """HMDB51 (action, PA-HMDB51 videos held out) -> PA-HMDB51 (action + privacy), at the
    paper's sizes (112 px, 16 frames) with the game that works on the benchmark: the pyramid
    f_d (it starts as the identity: no identity phase), the entropy game of the benchmark
    (gamma 0.5, M = 2 width-16 attackers on four frames, two updates per step, no restarts)
    and the in-training judges, which decide the game's length and the f_d it keeps. For GPUs;
    the paper's own settings are hmdb51_pahmdb51_paper (docs/results.md, "The paper's ablation
    on the benchmark", for what they did there).
    """
    cfg = C.ExperimentConfig(name="hmdb51_pahmdb51")
    cfg.data = _paper_sizes(cfg.data)
    game = benchmark()
    cfg.model = game.model
    cfg.adversary = game.adversary
    # Pretraining as the paper's; the game plays at least 6000 steps, then ends at the first
    # judged checkpoint that keeps the action with little leakage, up to 20000.
    cfg.trainer = _phases(
        cfg.trainer,
        (0, 20000, 5000, 6000, 5000),
        adversarial_max_steps=20000,
        checkpoint_every=500,
        log_every=100,
        val_batches=50,
    )
    # Judges every 2000 steps. Their target, of the ruler's kind, trains on raw clips for
    # 6000 steps of 16 (about 27 epochs of one clip per video of split 1's ~3,570 training
    # videos), then fine-tunes 1000 steps on each judged f_d's output.
    cfg.judge = dataclasses.replace(
        cfg.judge, every=2000, target_pretrain_steps=6000, target_steps=1000, privacy_steps=1000
    )
    cfg.eval = dataclasses.replace(cfg.eval, target_epochs=30, privacy_epochs=10)
    return cfg


@register("hmdb51_pahmdb51_paper")
def hmdb51_pahmdb51_paper() -> C.ExperimentConfig:
    """The paper's own settings, for reproduction: the conv f_d (width 32, 5 residual blocks),
    an identity phase, M = 4 attackers restarted every R = 1000 steps, 20000 adversarial
    steps at a fixed length, no judges. On the benchmark both the conv f_d and restarting
    failed under the ruler (docs/results.md, "The paper's ablation on the benchmark").
    """
    cfg = C.ExperimentConfig(name="hmdb51_pahmdb51_paper")
    cfg.data = _paper_sizes(cfg.data)
    cfg.model = dataclasses.replace(cfg.model, degrader_width=32, degrader_res_blocks=5)
    cfg.trainer = _phases(
        cfg.trainer,
        (2000, 20000, 5000, 20000, 5000),
        checkpoint_every=500,
        log_every=100,
        val_batches=50,
    )
    cfg.adversary = dataclasses.replace(cfg.adversary, num_models=4, restart_every=1000)
    cfg.eval = dataclasses.replace(cfg.eval, target_epochs=30, privacy_epochs=10)
    return cfg


@register("hmdb51_pahmdb51_cpu")
def hmdb51_pahmdb51_cpu() -> C.ExperimentConfig:
    """HMDB51 -> PA-HMDB51 sized for a 2-core CPU: about 60 minutes of training.

    The benchmark's shapes (64 px, 8 frames, batch 8) and its game (pyramid f_d, entropy,
    gamma 0.5, width-16 attackers on four frames, two updates per step), so each step costs
    what it costs on the benchmark; docs/benchmark.md ("Preset step times and the cost on real
    data") gives the step times behind the step counts. hmdb51_pahmdb51 plays the same game
    at the paper's sizes, for GPUs.
    """
    cfg = hmdb51_pahmdb51()
    cfg.name = "hmdb51_pahmdb51_cpu"
    game = benchmark()
    cfg.data = dataclasses.replace(cfg.data, frame_size=64, clip_length=8, batch_size=8)
    cfg.model = game.model
    # The benchmark's game at a fixed length: an adaptive one could outrun the 60 minutes.
    cfg.adversary = dataclasses.replace(game.adversary, extend_until_fall=0.0)
    # No identity phase (the pyramid starts as the identity); f_T learns 51 classes from
    # scratch (6000 steps: about 13 epochs of split 1); a validation pass of 20 batches every
    # threshold_check_every adversarial steps.
    cfg.trainer = _phases(
        cfg.trainer,
        (0, 6000, 1500, 2500, 1500),
        adversarial_max_steps=0,
        checkpoint_every=250,
        log_every=50,
        val_batches=20,
    )
    # No judges yet: what a judgement costs on HMDB51 at 64 px has not been measured, and the
    # 60 minutes have no room for an unmeasured cost.
    cfg.judge = C.JudgeConfig()  # every=0
    cfg.eval = dataclasses.replace(cfg.eval, seeds=1)
    return cfg


@register("ucf101_vispr")
def ucf101_vispr() -> C.ExperimentConfig:
    """Cross-dataset: UCF101 actions for f_T, VISPR images (5 attributes) for f_b."""
    cfg = hmdb51_pahmdb51()
    cfg.name = "ucf101_vispr"
    cfg.data.dataset = "ucf101_vispr"
    return cfg
