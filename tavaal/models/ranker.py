"""Ranker: the loss-prediction module of Learning Loss (Yoo & Kweon 2019), TA-VAAL §3.1."""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

__all__ = ["Ranker"]


class Ranker(nn.Module):
    """Predicts one raw, unbounded loss score per sample from a task learner's ``stages``.

    For each stage k: global average pool over every dimension after the channel one (an
    adaptive pool, so any map size works: 32/16/8/4, 28/14/7/4, 56/28/14/7 ... -- the official
    ``AvgPool2d(feature_sizes[k])`` only fits 32-px CIFAR maps and fails on 28 px, bug B6);
    2-D stage tensors (B, C) (the MLP's mid layer) are used as they are; then
    ``Linear(C_k, interm_dim) -> ReLU``. The per-stage vectors are concatenated and mapped by
    ``Linear(n_stages * interm_dim, 1)``. No BN, no dropout, PyTorch default init (as the
    official LossNet). For the paper's toy MLP (one stage) this is the "single layer
    perceptron on the mid layer" plus the shared output layer.

    Args:
        stage_channels: channels C_k of each stage tensor (``task_learner.stage_channels``).
        interm_dim: width of the per-stage embedding (128 in Learning Loss and TA-VAAL).

    ``forward(stages) -> (B,)`` raw predicted loss; the caller normalises it (sigmoid) where
    TA-VAAL needs a normalised rank r.
    """

    def __init__(self, stage_channels: Sequence[int], interm_dim: int = 128):
        super().__init__()
        channels = [int(c) for c in stage_channels]
        if not channels or any(c < 1 for c in channels):
            raise ValueError(f"stage_channels must be a non-empty list of positive ints, got {list(stage_channels)}")
        if int(interm_dim) < 1:
            raise ValueError(f"interm_dim must be positive, got {interm_dim}")
        self.stage_channels: List[int] = channels
        self.interm_dim = int(interm_dim)
        self.fcs = nn.ModuleList(nn.Linear(c, self.interm_dim) for c in channels)
        self.linear = nn.Linear(len(channels) * self.interm_dim, 1)

    def forward(self, stages: List[torch.Tensor]) -> torch.Tensor:
        """stages: list of (B, C_k, ...) or (B, C_k) tensors -> (B,) predicted loss."""
        if len(stages) != len(self.fcs):
            raise ValueError(f"Ranker built for {len(self.fcs)} stages, got {len(stages)}")
        embedded: List[torch.Tensor] = []
        for k, fc in enumerate(self.fcs):
            s = stages[k]
            if s.dim() > 2:
                s = s.flatten(2).mean(dim=2)
            elif s.dim() != 2:
                raise ValueError(f"stage {k} must have at least 2 dimensions (B, C), got {list(s.shape)}")
            if s.shape[1] != self.stage_channels[k]:
                raise ValueError(
                    f"stage {k} has {s.shape[1]} channels, the Ranker expects {self.stage_channels[k]}"
                )
            embedded.append(torch.relu(fc(s)))
        return self.linear(torch.cat(embedded, dim=1)).squeeze(1)
