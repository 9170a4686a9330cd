"""Discriminator D(r, mu) of (TA-)VAAL: probability that a latent code belongs to the labeled pool."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .ranker import append_rank


class Discriminator(nn.Module):
    """MLP on ``cat([mu, r], 1)`` (r last) -> sigmoid probability of "labeled".

    Args:
        latent_dim: size ``d`` of the WAE latent mean ``mu``.
        hidden_dim: width of every hidden layer (512 in the paper and the official code).
        num_layers: number of ``nn.Linear`` layers, >= 2. The paper uses a 5-layer MLP
            (d+1 -> 512 -> 512 -> 512 -> 512 -> 1); the official code 3 (d+1 -> 512 -> 512 -> 1).
        rank_conditioned: TA-VAAL (True) appends the rank r as the last input column;
            VAAL (False) sees ``mu`` only and ignores ``r``.

    Contract (read by ``tavaal.ops.score_topb``): ``self.layers`` is an ``nn.ModuleList`` of
    ``nn.Linear``; ReLU follows every layer but the last; ``forward`` applies a sigmoid to the
    last layer's single output.

    Which r to feed is the caller's choice: the paper feeds the *normalised* rank (the same
    r as the WAE decoder), the official code the raw Ranker output (bug B2). Weights are
    Kaiming-normal, biases zero (as the official code). For training, prefer ``logits`` with
    ``tavaal.losses.*_from_logits`` (numerically stable). Scriptable with ``torch.jit.script``.
    """

    def __init__(self, latent_dim: int, hidden_dim: int = 512, num_layers: int = 5, rank_conditioned: bool = True):
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"num_layers must be >= 2, got {num_layers}")
        if latent_dim < 1 or hidden_dim < 1:
            raise ValueError(f"latent_dim and hidden_dim must be positive, got {latent_dim}, {hidden_dim}")
        self.latent_dim = int(latent_dim)
        self.hidden_dim = int(hidden_dim)
        self.num_layers = int(num_layers)
        self.rank_conditioned = bool(rank_conditioned)
        dims = [self.latent_dim + int(self.rank_conditioned)] + [self.hidden_dim] * (self.num_layers - 1) + [1]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        for layer in self.layers:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    def inputs(self, r: Optional[torch.Tensor], mu: torch.Tensor) -> torch.Tensor:
        """The (B, d (+1)) matrix the MLP sees; r is (B,) or (B, 1)."""
        return append_rank(mu, r, self.rank_conditioned, self.latent_dim, "mu",
                           "this discriminator is rank-conditioned (TA-VAAL): pass r")

    def logits(self, r: Optional[torch.Tensor], mu: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid scores, shape (B,)."""
        h = self.inputs(r, mu)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < last:
                h = torch.relu(h)
        return h.squeeze(1)

    def forward(self, r: Optional[torch.Tensor], mu: torch.Tensor) -> torch.Tensor:
        """Probability of "labeled", shape (B,). Lower means more likely to be selected."""
        return torch.sigmoid(self.logits(r, mu))
