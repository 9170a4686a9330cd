"""Ranker: the loss-prediction module of Learning Loss (Yoo & Kweon 2019), TA-VAAL §3.1."""
from __future__ import annotations

import logging
from typing import List, Optional, Sequence

import torch
from torch import nn

__all__ = ["Ranker", "RANK_NORMS", "normalize_rank", "saturated_fraction", "warn_if_saturated", "append_rank"]

log = logging.getLogger(__name__)

RANK_NORMS = ("sigmoid", "standardized", "raw")
"""How a raw Ranker output becomes the rank r that TA-VAAL's decoder and discriminator see:

* ``sigmoid``: sigmoid(raw), the paper's literal reading (not invariant to the Ranker's
  offset: the ranking loss only constrains differences, so sigmoid(raw) can saturate);
* ``standardized``: sigmoid((raw - center) / scale) with center/scale the mean/std of the
  raw outputs on the labeled set, fixed once per cycle after task training
  (:meth:`Ranker.fit_normalization`); invariant to the Ranker's offset and scale;
* ``raw``: the raw output itself (what the official code feeds the discriminator).
"""

SATURATION_TOLERANCE = 0.01
SATURATION_FRACTION = 0.9


def normalize_rank(raw: torch.Tensor, rank_norm: str = "sigmoid", center=0.0, scale=1.0) -> torch.Tensor:
    """The rank normalisation of :data:`RANK_NORMS` applied to raw Ranker outputs (any shape);
    ``center``/``scale`` (floats or 0-d tensors) are used by ``standardized`` only.
    Prefer :meth:`Ranker.normalize`, which supplies the Ranker's own statistics."""
    if rank_norm == "raw":
        return raw
    if rank_norm == "standardized":
        return torch.sigmoid((raw - center) / scale)
    if rank_norm == "sigmoid":
        return torch.sigmoid(raw)
    raise ValueError(f"rank_norm must be one of {RANK_NORMS}, got {rank_norm!r}")


def append_rank(x: torch.Tensor, r: Optional[torch.Tensor], conditioned: bool, width: int, name: str,
                missing: str) -> torch.Tensor:
    """``cat([x, r], 1)`` (r last, in x's dtype) if ``conditioned``, else x (r ignored): the
    input of TA-VAAL's decoder and discriminator. ``x`` (B, width) named ``name`` in errors, r
    (B,) or (B, 1). Raises ValueError for other shapes, and with ``missing`` when r is None."""
    if x.dim() != 2 or x.shape[1] != width:
        raise ValueError(f"{name} must be (B, {width}), got shape {list(x.shape)}")
    if not conditioned:
        return x
    if r is None:
        raise ValueError(missing)
    r = r.reshape(-1, 1).to(x.dtype)
    if r.shape[0] != x.shape[0]:
        raise ValueError(f"r has {r.shape[0]} rows but {name} has {x.shape[0]}")
    return torch.cat([x, r], dim=1)


def saturated_fraction(r: torch.Tensor, tolerance: float = SATURATION_TOLERANCE) -> float:
    """Fraction of ``r`` within ``tolerance`` of 0 or of 1 (0.0 for an empty tensor)."""
    r = r.detach().float().reshape(-1)
    if r.numel() == 0:
        return 0.0
    return float(((r <= tolerance) | (r >= 1.0 - tolerance)).float().mean())


def warn_if_saturated(r: torch.Tensor, where: str, fraction: float = SATURATION_FRACTION) -> float:
    """Log a warning when more than ``fraction`` of the normalised ranks ``r`` lie within 0.01
    of 0 or 1 (r is then nearly constant and carries no ranking). Returns the saturated fraction."""
    got = saturated_fraction(r)
    if got > fraction:
        log.warning("rank signal saturated in %s: %.0f%% of %d normalised ranks are within %.2f of 0 or 1 "
                    "(r is nearly constant); use --rank-norm standardized", where, 100 * got, r.numel(),
                    SATURATION_TOLERANCE)
    return got


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

    ``forward(stages) -> (B,)`` raw predicted loss. :meth:`normalize` maps raw outputs to the
    rank r that TA-VAAL's decoder and discriminator see, according to ``rank_norm`` (one of
    :data:`RANK_NORMS`), with the per-cycle statistics held in the buffers ``rank_center`` and
    ``rank_scale`` (so checkpoints, exported graphs and scoring all apply the same mapping).
    """

    def __init__(self, stage_channels: Sequence[int], interm_dim: int = 128, rank_norm: str = "sigmoid"):
        super().__init__()
        if rank_norm not in RANK_NORMS:
            raise ValueError(f"rank_norm must be one of {RANK_NORMS}, got {rank_norm!r}")
        self.rank_norm = rank_norm
        channels = [int(c) for c in stage_channels]
        if not channels or any(c < 1 for c in channels):
            raise ValueError(f"stage_channels must be a non-empty list of positive ints, got {list(stage_channels)}")
        if int(interm_dim) < 1:
            raise ValueError(f"interm_dim must be positive, got {interm_dim}")
        self.stage_channels: List[int] = channels
        self.interm_dim = int(interm_dim)
        self.fcs = nn.ModuleList(nn.Linear(c, self.interm_dim) for c in channels)
        self.linear = nn.Linear(len(channels) * self.interm_dim, 1)
        self.register_buffer("rank_center", torch.zeros(()))
        self.register_buffer("rank_scale", torch.ones(()))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints written before the normalisation buffers existed: keep the defaults.
        for name in ("rank_center", "rank_scale"):
            state_dict.setdefault(prefix + name, getattr(self, name).clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def normalize(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw Ranker outputs (any shape) -> rank r of the same shape, per ``self.rank_norm``."""
        return normalize_rank(raw, self.rank_norm, self.rank_center, self.rank_scale)

    @torch.no_grad()
    def fit_normalization(self, raw: torch.Tensor) -> None:
        """Fix the statistics of ``standardized`` from raw outputs on the labeled set (N >= 1):
        center = mean, scale = std (population; at least 1e-6). Stored for every
        ``rank_norm`` (cheap, and informative in checkpoints); used only by ``standardized``.
        Raises ValueError for an empty or non-finite input."""
        raw = raw.detach().float().reshape(-1)
        if raw.numel() == 0:
            raise ValueError("fit_normalization needs at least one raw Ranker output")
        if not bool(torch.isfinite(raw).all()):
            raise ValueError("fit_normalization got NaN/inf Ranker outputs: the task training diverged")
        self.rank_center.fill_(float(raw.mean()))
        self.rank_scale.fill_(max(float(raw.std(unbiased=False)), 1e-6))

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
                raise ValueError(f"stage {k} has {s.shape[1]} channels, the Ranker expects {self.stage_channels[k]}")
            embedded.append(torch.relu(fc(s)))
        return self.linear(torch.cat(embedded, dim=1)).squeeze(1)
