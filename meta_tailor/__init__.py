"""Learning: baseline MLP, tailoring and meta-tailoring, ranking, and neural-embedding Noether Networks.

The scientific-data part (this package, except :mod:`meta_tailor.video`):

* :func:`make_mlp`, :func:`train_mlp`, :func:`save_mlp`, :func:`load_mlp` — the HNN "vanilla MLP".
* :func:`noether_loss`, :func:`tailored_predict` (fast, batched), :func:`tailored_predict_func` (torch.func
  reference), :func:`meta_tailor`, :func:`tailored_field` — tailoring per query state and meta-tailoring.
* :func:`tailor_trajectories`, :func:`trajectory_rollout`, :func:`trajectory_predictor`,
  :func:`sequence_noether_loss` — tailoring per query sequence (Algorithm 1, ``TailorConfig(mode="trajectory")``);
  :func:`meta_tailor_many` meta-tailors several candidates at once in that mode.
* :func:`rk4_rollout`, :func:`rollout_trajectories` and the metrics — long-term prediction.
* :func:`rank`, :func:`comparators`, :func:`pretrain` — the paper's ranking protocol and comparators.
* :func:`cross_validate`, :func:`choose_by_cv` — the choice of law made on held-out training trajectories.
* :class:`HNN` — Hamiltonian Neural Network baseline.
"""

from meta_tailor._config import (
    OUTER_WARMUP,
    MLPConfig,
    RankConfig,
    TailorConfig,
    default_inner_lrs,
    paper_configs,
    resolve_device,
)
from meta_tailor._cv import CV_COLUMNS, CVResult, choose_by_cv, cross_validate, cv_fold, cv_folds
from meta_tailor._hnn import HNN
from meta_tailor._metrics import horizon_errors, rollout_mse, rollout_rmse
from meta_tailor._mlp import load_adam_state, load_mlp, make_mlp, save_mlp, train_mlp
from meta_tailor._rank import (
    COMPARATOR_COLUMNS,
    CURVE_COLUMNS,
    RANK_COLUMNS,
    SCREEN_COLUMNS,
    ComparatorResult,
    RankResult,
    comparators,
    dsl_compiler,
    pretrain,
    rank,
    segment_trajectories,
)
from meta_tailor._rollout import predict_trajectories, rk4_rollout, rollout_trajectories
from meta_tailor._tailor import (
    MetaTailorResult,
    euler_states,
    meta_tailor,
    meta_tailor_many,
    noether_loss,
    sequence_noether_loss,
    tailor_trajectories,
    tailored_field,
    tailored_predict,
    tailored_predict_func,
    trajectory_predictor,
    trajectory_rollout,
)

__all__ = [
    "COMPARATOR_COLUMNS",
    "CV_COLUMNS",
    "CVResult",
    "HNN",
    "RANK_COLUMNS",
    "SCREEN_COLUMNS",
    "OUTER_WARMUP",
    "CURVE_COLUMNS",
    "ComparatorResult",
    "MLPConfig",
    "MetaTailorResult",
    "RankConfig",
    "RankResult",
    "TailorConfig",
    "choose_by_cv",
    "comparators",
    "cross_validate",
    "cv_fold",
    "cv_folds",
    "default_inner_lrs",
    "dsl_compiler",
    "euler_states",
    "horizon_errors",
    "load_adam_state",
    "load_mlp",
    "make_mlp",
    "meta_tailor",
    "meta_tailor_many",
    "noether_loss",
    "paper_configs",
    "predict_trajectories",
    "pretrain",
    "rank",
    "resolve_device",
    "rk4_rollout",
    "rollout_mse",
    "rollout_rmse",
    "rollout_trajectories",
    "save_mlp",
    "segment_trajectories",
    "sequence_noether_loss",
    "tailor_trajectories",
    "tailored_field",
    "tailored_predict",
    "tailored_predict_func",
    "train_mlp",
    "trajectory_predictor",
    "trajectory_rollout",
]
