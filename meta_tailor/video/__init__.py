"""Neural-embedding Noether Networks for video prediction (Algorithm 1 of the paper).

A predictor f_theta (deterministic action-conditioned SVG) is tailored at prediction time by one inner step on a
meta-learned conservation loss |g_phi(x_0) - g_phi(x~_t)|^2, and both theta and phi are trained through that
step. Two set-ups: the controlled pixel pendulum (latent tailoring) and ramp videos (CNGRAD).
"""

from meta_tailor.video._data import (
    PendulumVideoConfig,
    VideoData,
    config_key,
    generate_pendulum_video,
    load_or_generate_pendulum,
    load_video_data,
    pendulum_actions,
    save_video_data,
)
from meta_tailor.video._experiment import overall_table, run_experiment
from meta_tailor.video._metrics import frame_metrics
from meta_tailor.video._models import FrameEmbedding, LatentEmbedding, ModelConfig, SVGPredictor
from meta_tailor.video._noether import (
    INNER_OPTIMIZERS,
    NoetherConfig,
    Prediction,
    conservation_loss,
    frame_noether_loss,
    latent_noether_loss,
    predict_sequence,
    task_loss,
)
from meta_tailor.video._plots import inner_steps_summary, plot_inner_steps, plot_metrics
from meta_tailor.video._ramp import RampConfig, generate_ramp_video, load_physics101_ramp
from meta_tailor.video._train import (
    METHOD_LABELS,
    METHODS,
    VideoConfig,
    evaluate,
    inner_steps_study,
    load_checkpoint,
    load_models,
    pendulum_config,
    ramp_config,
    resolve_device,
    time_meta_epoch,
    train_all,
    train_stage,
)

__all__ = [
    "FrameEmbedding",
    "INNER_OPTIMIZERS",
    "LatentEmbedding",
    "METHODS",
    "METHOD_LABELS",
    "ModelConfig",
    "NoetherConfig",
    "PendulumVideoConfig",
    "Prediction",
    "RampConfig",
    "SVGPredictor",
    "VideoConfig",
    "VideoData",
    "config_key",
    "conservation_loss",
    "evaluate",
    "frame_metrics",
    "frame_noether_loss",
    "generate_pendulum_video",
    "generate_ramp_video",
    "inner_steps_study",
    "inner_steps_summary",
    "latent_noether_loss",
    "load_checkpoint",
    "load_models",
    "load_or_generate_pendulum",
    "load_physics101_ramp",
    "load_video_data",
    "overall_table",
    "pendulum_actions",
    "pendulum_config",
    "plot_inner_steps",
    "plot_metrics",
    "predict_sequence",
    "ramp_config",
    "resolve_device",
    "run_experiment",
    "save_video_data",
    "task_loss",
    "time_meta_epoch",
    "train_all",
    "train_stage",
]
