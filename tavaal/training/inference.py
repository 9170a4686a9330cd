"""Batched, gradient-free inference over index subsets of a dataset."""
from __future__ import annotations

from typing import Dict, Iterable, Sequence

import torch

from .accel import accel_of


def rank_inputs(raw_rank: torch.Tensor, mode: str, ranker) -> torch.Tensor:
    """What the discriminator sees as r: ``ranker.normalize(raw)`` for mode "normalized" (the
    paper; the decoder always sees this), the raw Ranker output for "raw" (official code, B2)."""
    if mode == "normalized":
        return ranker.normalize(raw_rank)
    if mode == "raw":
        return raw_rank
    raise ValueError(f"rank mode must be 'normalized' or 'raw', got {mode!r}")


@torch.no_grad()
def predict(dataset, indices: Sequence[int], *, backbone=None, ranker=None, wae=None,
            outputs: Iterable[str] = ("logits",), batch_size: int = 512, device="cpu") -> Dict[str, torch.Tensor]:
    """Run the models over ``dataset[indices]`` in order and return the requested outputs (CPU).

    outputs: any of "logits" (N, K), "feature" (N, F), "rank" (N,) raw Ranker output,
    "mu" (N, d) WAE posterior mean. Models are used in whatever mode they are in.
    """
    outputs = tuple(outputs)
    allowed = {"logits", "feature", "rank", "mu"}
    if not set(outputs) <= allowed:
        raise ValueError(f"unknown outputs {set(outputs) - allowed}; choose from {allowed}")
    if "rank" in outputs and ranker is None:
        raise ValueError("'rank' requested but no Ranker given")
    if "mu" in outputs and wae is None:
        raise ValueError("'mu' requested but no WAE given")
    need_backbone = bool({"logits", "feature", "rank"} & set(outputs))
    chunks: Dict[str, list] = {name: [] for name in outputs}
    accel = accel_of(backbone if need_backbone else wae, device)  # as trained: bf16 / channels_last on CUDA
    for x, _, _ in accel.loader(dataset, indices, batch_size, shuffle=False):
        x = accel.inputs(x)
        with accel.autocast():
            got = {}
            if need_backbone:
                logits, feature, stages = backbone(x)
                got = {"logits": logits, "feature": feature}
                if "rank" in outputs:  # the Ranker head in fp32: bf16 outputs would tie selection scores
                    with torch.autocast(x.device.type, enabled=False):
                        got["rank"] = ranker([s.float() for s in stages])
            if "mu" in outputs:
                got["mu"] = wae.encode(x)[0]
        for name in outputs:
            chunks[name].append(got[name].float())  # kept on the device: one copy to the host at the end
    return {name: torch.cat(chunk).cpu() if chunk else torch.empty(0) for name, chunk in chunks.items()}


def set_dropout_train(module: torch.nn.Module, active: bool = True) -> None:
    """Put only the Dropout layers of ``module`` in train mode (MC-dropout; BN stays in eval)."""
    for m in module.modules():
        if isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d, torch.nn.AlphaDropout)):
            m.train(active)
