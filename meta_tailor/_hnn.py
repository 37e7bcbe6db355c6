"""Hamiltonian Neural Network (Greydanus, Dzamba and Yosinski 2019), our own implementation.

A network outputs a scalar H(q, p); the predicted field is Hamilton's equations
``dq/dt = dH/dp, dp/dt = -dH/dq``, so the learned H is conserved exactly along the learned flow. The state
is ``x = (q_1..q_k, p_1..p_k)``: the first half of the variables are positions, the second half momenta
(the order of every built-in dataset). Same body, initialisation and optimiser as the vanilla MLP.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class HNN(nn.Module):
    """Hamiltonian Neural Network over ``n_vars = 2k`` canonical coordinates.

    Args:
        n_vars: state dimension (even).
        hidden: width of the two tanh hidden layers.
        seed: seed of the orthogonal initialisation.
    """

    def __init__(self, n_vars: int, *, hidden: int = 200, seed: int = 0) -> None:
        super().__init__()
        if n_vars % 2:
            raise ValueError(f"an HNN needs canonical pairs (q, p): got {n_vars} variables")
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            self.net = nn.Sequential(
                nn.Linear(n_vars, hidden),
                nn.Tanh(),
                nn.Linear(hidden, hidden),
                nn.Tanh(),
                nn.Linear(hidden, 1, bias=False),
            )
            for layer in self.net:
                if isinstance(layer, nn.Linear):
                    nn.init.orthogonal_(layer.weight)
        finally:
            torch.random.set_rng_state(state)
        self.k = n_vars // 2

    def hamiltonian(self, x: Tensor) -> Tensor:
        """Learned H, shape (...) for x of shape (..., n_vars)."""
        return self.net(x)[..., 0]

    def forward(self, x: Tensor) -> Tensor:
        """Time derivative (..., n_vars) from Hamilton's equations of the learned H."""
        keep_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            xg = x if x.requires_grad else x.detach().requires_grad_(True)
            (dh,) = torch.autograd.grad(self.hamiltonian(xg).sum(), xg, create_graph=keep_graph)
        dq = dh[..., self.k :]
        dp = -dh[..., : self.k]
        out = torch.cat([dq, dp], dim=-1)
        return out if keep_graph else out.detach()
