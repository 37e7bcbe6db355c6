"""Learning: the baseline MLP, meta-tailoring with a conservation law, the paper's ranking and comparators.

The scientific-data part (this package, except :mod:`meta_tailor.video`), in the names most users need:

* :func:`make_mlp`, :func:`train_mlp`, :func:`save_mlp`, :func:`load_mlp` (with :class:`MLPConfig`): the
  HNN "vanilla MLP" dynamics model; :class:`HNN`, the Hamiltonian Neural Network baseline.
* :func:`pretrain`, :func:`rank` (:class:`RankConfig`, :class:`TailorConfig`, :class:`RankResult`): rank
  candidate laws by how much meta-tailoring with each improves long-term predictions.
* :func:`comparators` (:class:`ComparatorResult`): the paper's table of methods; :func:`cross_validate`: the
  choice of law on held-out training trajectories; :func:`rk4_rollout`: long-term prediction.

The tailoring loops, losses, rules, metrics and ranking internals are in :mod:`meta_tailor.advanced`.
"""

from meta_tailor._comparators import ComparatorResult, comparators
from meta_tailor._config import MLPConfig, RankConfig, TailorConfig
from meta_tailor._cv import cross_validate
from meta_tailor._hnn import HNN
from meta_tailor._mlp import load_mlp, make_mlp, save_mlp, train_mlp
from meta_tailor._rank import RankResult, pretrain, rank
from meta_tailor._rollout import rk4_rollout

__all__ = [
    "ComparatorResult",
    "comparators",
    "cross_validate",
    "HNN",
    "load_mlp",
    "make_mlp",
    "MLPConfig",
    "pretrain",
    "rank",
    "RankConfig",
    "RankResult",
    "rk4_rollout",
    "save_mlp",
    "TailorConfig",
    "train_mlp",
]
