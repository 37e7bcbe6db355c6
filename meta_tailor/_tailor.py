"""Tailoring and meta-tailoring of a dx/dt model with a Noether (conservation) loss.

Notation (Noether Networks, eq. 2-3): a model f_theta predicts dx/dt from a state x; a candidate conserved
quantity g(x; c) has parameters c ("phi" in the paper). For a query state x_t the model's own
finite-difference prediction of the next state is ``x~ = x_t + f_theta(x_t) dt`` (section 4.1) and the
Noether loss is ``|g(x_t) - g(x~)|^2`` (eq. 2 with T = 1, where forms (a) and (b) coincide).

Tailoring is **per query state**: each state gets its own weights
``theta(x_t) = theta - lr grad_theta L_Noether(x_t)`` (eq. 3, repeated ``steps`` times), and the tailored
derivative is ``f_theta(x_t)(x_t)``. This makes the tailored model an ordinary vector field x -> dx/dt that can
be integrated, which is how the long-term rollouts are evaluated. Meta-tailoring trains theta and c on the
task loss (MSE of dx/dt) *after* tailoring, back-propagating through the inner step (second order).

With ``TailorConfig(mode="trajectory")`` tailoring is instead **per query sequence**, as Algorithm 1 writes
it: from the true first state x_0 the model is rolled out with explicit Euler steps
``x~_t = x~_{t-1} + f_theta(x~_{t-1}) dt`` (t = 1..T), the weights take SGD step(s) on the Noether loss of that
predicted sequence (eq. 2(a) or 2(b), :func:`sequence_noether_loss`), and the whole sequence is predicted by
integrating the tailored field ``f_theta(x_0)`` (RK4 on the data grid). :func:`tailor_trajectories` batches
this over sequences and inner learning rates; meta-tailoring then uses the MSE of the
predicted sequences as outer loss.

The implementation, by responsibility (this module re-exports the public names):

* :mod:`meta_tailor._losses` — the Noether losses and the model's own inner rollout;
* :mod:`meta_tailor._rules` — the inner step rules (``"sgd"``, ``"polyak"``);
* :mod:`meta_tailor._per_state` — per-state tailoring: the generic ``torch.func`` reference
  (:func:`tailored_predict_func`) and the tanh MLP's low-rank fast path (:func:`tailored_predict`);
* :mod:`meta_tailor._mlp_fast` — the tanh MLP with batched weights, the fast path of per-trajectory tailoring;
* :mod:`meta_tailor._trajectory` — per-trajectory tailoring and sequence prediction, through the kernels that
  :func:`~meta_tailor._trajectory._kernels` chooses (the fast path or ``torch.func``);
* :mod:`meta_tailor._outer`, :mod:`meta_tailor._outer_tasks`, :mod:`meta_tailor._outer_adam` — meta-tailoring:
  one outer loop for one or many candidate laws, the losses it trains on, and its Adam.

Inner step rule (``rule``, :data:`~meta_tailor._config.INNER_RULES`): ``"sgd"`` is the paper's step with a
fixed rate ``lr``; ``"polyak"`` scales the rate of every query (state or sequence) by ``L / |grad L|^2`` of
that query, the Polyak step size, so that ``lr`` is the fraction of the query's Noether loss that the step
removes to first order (``lr = 1`` removes all of it). The step is then unchanged when ``g`` is multiplied by
a constant, and one ``lr`` suits queries whose losses and gradients differ widely (on the real pendulum the
full linearised step ``L / |grad L|^2`` of the pretrained MLP ranges from 0.0029 to 0.0166 over its
sequences), which a fixed rate does not.
"""

from meta_tailor._losses import ConservedFn, euler_states, noether_loss, sequence_noether_loss
from meta_tailor._outer import MetaTailorResult, meta_tailor, meta_tailor_many
from meta_tailor._per_state import tailored_field, tailored_predict, tailored_predict_func
from meta_tailor._rules import rule_grads
from meta_tailor._trajectory import (
    batched_forward,
    tailor_trajectories,
    trajectory_predictor,
    trajectory_rollout,
)

__all__ = [
    "batched_forward",
    "ConservedFn",
    "euler_states",
    "meta_tailor",
    "meta_tailor_many",
    "MetaTailorResult",
    "noether_loss",
    "rule_grads",
    "sequence_noether_loss",
    "tailor_trajectories",
    "tailored_field",
    "tailored_predict",
    "tailored_predict_func",
    "trajectory_predictor",
    "trajectory_rollout",
]
