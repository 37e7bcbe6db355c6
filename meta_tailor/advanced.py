"""Everything of the learning layer, for research scripts and benchmarks: the tailoring loops, their
losses and rules, rollouts, metrics, cross-validation and the ranking internals.

The names most users need are in :mod:`meta_tailor` itself; these may change between versions.
"""

from meta_tailor._comparators import (
    COMPARATOR_COLUMNS,
    ComparatorResult,
    comparators,
    oracle_ranking,
)
from meta_tailor._config import (
    OUTER_WARMUP,
    PROTOCOLS,
    MLPConfig,
    RankConfig,
    TailorConfig,
    default_inner_lrs,
    paper_configs,
    resolve_device,
)
from meta_tailor._cv import (
    CV_COLUMNS,
    PROTOCOL_CV_COLUMNS,
    RECORDING_PIECES,
    CVResult,
    ProtocolCV,
    choose_by_cv,
    compare_protocols,
    cross_validate,
    cv_fold,
    cv_folds,
)
from meta_tailor._hnn import HNN
from meta_tailor._losses import euler_states, noether_loss, sequence_noether_loss
from meta_tailor._metrics import horizon_errors, rollout_mse, rollout_rmse
from meta_tailor._mlp import load_adam_state, load_mlp, make_mlp, save_mlp, train_mlp
from meta_tailor._mlp_fast import _mlp_sequence_grads as mlp_sequence_grads
from meta_tailor._outer import MetaTailorResult, meta_tailor, meta_tailor_many
from meta_tailor._per_state import tailored_field, tailored_predict, tailored_predict_func
from meta_tailor._rank import (
    CURVE_COLUMNS,
    RANK_COLUMNS,
    SCREEN_COLUMNS,
    Predictor,
    Pretrained,
    RankResult,
    dsl_compiler,
    evaluate_field,
    pretrain,
    rank,
    segment_trajectories,
    tailored_model,
)
from meta_tailor._rank import _prepare as prepare_ranking
from meta_tailor._rollout import predict_trajectories, rk4_rollout, rollout_trajectories
from meta_tailor._rules import _polyak_scale as polyak_scale
from meta_tailor._rules import rule_grads
from meta_tailor._trajectory import (
    tailor_trajectories,
    trajectory_predictor,
    trajectory_rollout,
)

__all__ = [
    "choose_by_cv",
    "COMPARATOR_COLUMNS",
    "ComparatorResult",
    "comparators",
    "compare_protocols",
    "cross_validate",
    "CURVE_COLUMNS",
    "CV_COLUMNS",
    "cv_fold",
    "cv_folds",
    "CVResult",
    "default_inner_lrs",
    "dsl_compiler",
    "euler_states",
    "evaluate_field",
    "HNN",
    "horizon_errors",
    "load_adam_state",
    "load_mlp",
    "make_mlp",
    "meta_tailor",
    "meta_tailor_many",
    "MetaTailorResult",
    "mlp_sequence_grads",
    "MLPConfig",
    "noether_loss",
    "oracle_ranking",
    "OUTER_WARMUP",
    "paper_configs",
    "PROTOCOL_CV_COLUMNS",
    "RECORDING_PIECES",
    "PROTOCOLS",
    "ProtocolCV",
    "polyak_scale",
    "predict_trajectories",
    "Predictor",
    "Pretrained",
    "prepare_ranking",
    "pretrain",
    "rank",
    "RANK_COLUMNS",
    "RankConfig",
    "RankResult",
    "resolve_device",
    "rk4_rollout",
    "rollout_mse",
    "rollout_rmse",
    "rollout_trajectories",
    "rule_grads",
    "save_mlp",
    "SCREEN_COLUMNS",
    "segment_trajectories",
    "sequence_noether_loss",
    "tailor_trajectories",
    "TailorConfig",
    "tailored_field",
    "tailored_model",
    "tailored_predict",
    "tailored_predict_func",
    "train_mlp",
    "trajectory_predictor",
    "trajectory_rollout",
]
