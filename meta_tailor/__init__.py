"""Learning: baseline MLP, tailoring and meta-tailoring, ranking, and neural-embedding Noether Networks.

The scientific-data part (this package, except :mod:`meta_tailor.video`):

* :func:`make_mlp`, :func:`train_mlp`, :func:`save_mlp`, :func:`load_mlp` — the HNN "vanilla MLP".
* :func:`noether_loss`, :func:`tailored_predict` (fast, batched), :func:`tailored_predict_func` (torch.func
  reference), :func:`meta_tailor`, :func:`tailored_field` — tailoring and meta-tailoring.
* :func:`rk4_rollout`, :func:`rollout_trajectories` and the metrics — long-term prediction.
* :func:`rank`, :func:`comparators`, :func:`pretrain` — the paper's ranking protocol and comparators.
* :class:`HNN` — Hamiltonian Neural Network baseline.
"""

from meta_tailor._config import MLPConfig, RankConfig, TailorConfig, paper_configs, resolve_device
from meta_tailor._hnn import HNN
from meta_tailor._metrics import horizon_errors, rollout_mse, rollout_rmse
from meta_tailor._mlp import load_mlp, make_mlp, save_mlp, train_mlp
from meta_tailor._rank import (
    COMPARATOR_COLUMNS,
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
from meta_tailor._rollout import rk4_rollout, rollout_trajectories
from meta_tailor._tailor import (
    MetaTailorResult,
    meta_tailor,
    noether_loss,
    tailored_field,
    tailored_predict,
    tailored_predict_func,
)

__all__ = [
    "COMPARATOR_COLUMNS",
    "HNN",
    "RANK_COLUMNS",
    "SCREEN_COLUMNS",
    "ComparatorResult",
    "MLPConfig",
    "MetaTailorResult",
    "RankConfig",
    "RankResult",
    "TailorConfig",
    "comparators",
    "dsl_compiler",
    "horizon_errors",
    "load_mlp",
    "make_mlp",
    "meta_tailor",
    "noether_loss",
    "paper_configs",
    "pretrain",
    "rank",
    "resolve_device",
    "rk4_rollout",
    "rollout_mse",
    "rollout_rmse",
    "rollout_trajectories",
    "save_mlp",
    "segment_trajectories",
    "tailored_field",
    "tailored_predict",
    "tailored_predict_func",
    "train_mlp",
]
