"""The comparators of the paper's tables, trained and evaluated on the same splits as the ranking.

Methods (one row each of :data:`COMPARATOR_COLUMNS`): ``vanilla_mlp`` (the pretrained model),
``mlp_more_epochs`` (the same MLP trained as many more full-batch steps as meta-tailoring takes), ``noether``
(the ranking's winner), ``oracle`` (the ranking protocol run on the true law) and ``hnn`` (a Hamiltonian
Neural Network trained like the MLP).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pandas as pd
import torch
from torch import Tensor, nn

from formula_search.io import parse_params
from meta_tailor._config import MLPConfig, RankConfig, resolve_device
from meta_tailor._hnn import HNN
from meta_tailor._mlp import make_mlp, train_mlp
from meta_tailor._outer_adam import _continued_state
from meta_tailor._per_state import tailored_field
from meta_tailor._rank import (
    Compiler,
    Predictor,
    Progress,
    _prepare,
    _Split,
    dsl_compiler,
    evaluate_field,
    rank,
    segment_trajectories,
    tailored_model,
)

#: Columns of the comparators table.
COMPARATOR_COLUMNS = [
    "method",
    "description",
    "inner_lr",
    "inner_steps",
    "train_rollout_mse",
    "test_rmse",
]

Model = Callable[[Tensor], Tensor] | Predictor


@dataclass(frozen=True)
class ComparatorResult:
    """Outcome of :func:`comparators`: ``table`` (:data:`COMPARATOR_COLUMNS`) and ``horizons`` (per-horizon
    test error of every method, columns of :func:`~meta_tailor._metrics.horizon_errors`)."""

    table: pd.DataFrame
    horizons: pd.DataFrame


@dataclass
class _Rows:
    """The comparators' table rows and per-horizon test errors, filled method by method."""

    train: list
    test: list
    device: str
    progress: Progress | None
    records: list[dict] = field(default_factory=list)
    horizons: list[pd.DataFrame] = field(default_factory=list)

    def add(
        self, method: str, description: str, fieldfn: Model, lr: float = math.nan, steps: int = 0
    ) -> None:
        """Evaluate one method on the training and test trajectories and add its row."""
        tr_mse = evaluate_field(fieldfn, self.train, device=self.device, method=method)[0]
        _, rmse, hz = evaluate_field(fieldfn, self.test, device=self.device, method=method)
        self.records.append(
            {
                "method": method,
                "description": description,
                "inner_lr": lr,
                "inner_steps": steps,
                "train_rollout_mse": tr_mse,
                "test_rmse": rmse,
            }
        )
        self.horizons.append(hz)
        if self.progress:
            self.progress("comparators", len(self.records), 5)

    def result(self) -> ComparatorResult:
        return ComparatorResult(
            table=pd.DataFrame(self.records, columns=COMPARATOR_COLUMNS),
            horizons=pd.concat(self.horizons, ignore_index=True)
            if self.horizons
            else pd.DataFrame(),
        )


def _more_epochs(
    model: nn.Module,
    train: _Split,
    *,
    dt: float,
    mlp_config: MLPConfig,
    rank_config: RankConfig,
    outer_state: dict | None,
    device: str,
) -> Model:
    """The MLP trained ``rank_config.tailor.epochs`` more steps (continuing its Adam if so configured)."""
    more = make_mlp(train.x.shape[1], hidden=mlp_config.hidden).to(device)
    more.load_state_dict(model.state_dict())
    resume = _continued_state(rank_config.tailor, outer_state, dict(model.named_parameters()))
    train_mlp(
        more,
        train.x,
        train.dxdt,
        config=mlp_config,
        steps=rank_config.tailor.epochs,
        resume=resume,
    )
    return tailored_field(more, None, None, lr=0.0, steps=0, dt=dt)


def _noether(
    winner: dict,
    winner_model: nn.Module,
    *,
    dt: float,
    compiler: Compiler,
    rank_config: RankConfig,
    device: str,
) -> tuple[Model, float, int]:
    """The ranking winner (a row of the rank table) tailoring its meta-tailored model: (model, lr, steps)."""
    g, _ = compiler(winner["formula"])
    theta = torch.tensor(parse_params(winner["params"]), dtype=torch.float32, device=device)
    lr, steps = float(winner["inner_lr"]), int(winner["inner_steps"])
    fieldfn = tailored_model(
        winner_model.to(device), g, theta, lr=lr, steps=steps, dt=dt, tailor=rank_config.tailor
    )
    return fieldfn, lr, steps


def _oracle(
    oracle: str,
    model: nn.Module,
    data,
    *,
    dt: float,
    compiler: Compiler,
    rank_config: RankConfig,
    outer_state: dict | None,
    device: str,
    ranked=...,
) -> tuple[Model, float, int] | None:
    """The ranking protocol on the true law ``oracle`` (its parameters fixed): (model, lr, steps), or None
    when it did not reach the long stage. ``ranked``: :func:`oracle_ranking`'s result, when it ran elsewhere."""
    if ranked is ...:
        ranked = oracle_ranking(
            oracle,
            model,
            data,
            rank_config=rank_config,
            compiler=compiler,
            outer_state=outer_state,
        )
    if ranked is None:
        return None
    tailored, lr, steps = ranked
    g, _ = compiler(oracle)
    fieldfn = tailored_model(
        tailored.to(device),
        g,
        torch.zeros(0, device=device),
        lr=lr,
        steps=steps,
        dt=dt,
        tailor=rank_config.tailor,
    )
    return fieldfn, lr, steps


def oracle_ranking(
    oracle: str,
    model: nn.Module,
    data,
    *,
    rank_config: RankConfig = RankConfig(),
    compiler: Compiler | None = None,
    outer_state: dict | None = None,
    threads: int | None = None,
) -> tuple[nn.Module, float, int] | None:
    """The oracle's part of :func:`comparators` on its own: the ranking protocol on the true law ``oracle``
    (its parameters fixed). Returns the meta-tailored MLP, its inner rate and steps (``None`` when it did
    not reach the long stage), which ``comparators(oracle_ranked=...)`` takes; everything here pickles, so
    it can run in another process (``threads``: torch threads there) beside the ranking."""
    if threads:
        torch.set_num_threads(threads)
    compiler = compiler or dsl_compiler(data.var_names)
    survivors = pd.DataFrame({"formula": [oracle], "params": [[]]})
    oracle_cfg = replace(
        rank_config, top_k=1, tailor=replace(rank_config.tailor, learn_params=False)
    )
    res = rank(
        survivors, model, data, config=oracle_cfg, compiler=compiler, outer_state=outer_state
    )
    if res.winner_model is None:
        return None
    row = res.table.iloc[0]
    return res.winner_model.cpu(), float(row["inner_lr"]), int(row["inner_steps"])


def _hnn(train: _Split, mlp_config: MLPConfig, device: str) -> Model:
    """A Hamiltonian Neural Network trained like the MLP, as a field."""
    hnn = HNN(train.x.shape[1], hidden=mlp_config.hidden, seed=mlp_config.seed).to(device)
    train_mlp(hnn, train.x, train.dxdt, config=mlp_config)

    def hnn_field(x: Tensor) -> Tensor:
        with torch.no_grad():
            return hnn(x)

    return hnn_field


def comparators(
    model: nn.Module,
    data,
    *,
    mlp_config: MLPConfig = MLPConfig(),
    rank_config: RankConfig = RankConfig(),
    winner: dict | None = None,
    winner_model: nn.Module | None = None,
    oracle: str | None = None,
    compiler: Compiler | None = None,
    include_hnn: bool = True,
    progress: Progress | None = None,
    outer_state: dict | None = None,
    oracle_ranked=...,
) -> ComparatorResult:
    """Train and evaluate the paper's comparators on the same splits as the ranking.

    Methods: ``vanilla_mlp`` (the pretrained model), ``mlp_more_epochs`` (the same MLP trained
    ``rank_config.tailor.epochs`` more full-batch steps), ``noether`` (the ranking winner, given as a row of
    the rank table and its meta-tailored model), ``oracle`` (the same protocol with the true Hamiltonian
    ``oracle``: screen of rates/steps, then meta-tailoring), and ``hnn`` (a Hamiltonian Neural Network trained
    like the MLP).

    With ``rank_config.tailor.outer_adam == "continue"`` (``outer_state``: the MLP's pretraining Adam
    state), the oracle's meta-tailoring and the MLP's extra epochs both continue the pretraining's Adam.
    ``oracle_ranked``: the oracle's ranking (:func:`oracle_ranking`) when it was run elsewhere.
    """
    device = resolve_device(rank_config.device)
    compiler = compiler or dsl_compiler(data.var_names)
    dt = float(data.time_step)
    trajs = segment_trajectories(data.train, rank_config.train_segments)
    train = _prepare(trajs, device)
    rows = _Rows(train=trajs, test=data.test, device=device, progress=progress)
    kw = dict(dt=dt, rank_config=rank_config, device=device)

    model = model.to(device)
    rows.add("vanilla_mlp", "N/A", tailored_field(model, None, None, lr=0.0, steps=0, dt=dt))
    more = _more_epochs(model, train, mlp_config=mlp_config, outer_state=outer_state, **kw)
    rows.add("mlp_more_epochs", f"+{rank_config.tailor.epochs} epochs", more)
    if winner is not None and winner_model is not None:
        rows.add(
            "noether", winner["formula"], *_noether(winner, winner_model, compiler=compiler, **kw)
        )
    if oracle:
        found = _oracle(
            oracle,
            model,
            data,
            compiler=compiler,
            outer_state=outer_state,
            ranked=oracle_ranked,
            **kw,
        )
        if found is not None:
            rows.add("oracle", oracle, *found)
    if include_hnn and train.x.shape[1] % 2 == 0:
        rows.add("hnn", "learned H", _hnn(train, mlp_config, device))
    return rows.result()
