"""Did the discriminator learn? D's separation of labeled from unlabeled rows, and the spread of
its scores and of r.

A discriminator that learned nothing scores every row alike (e.g. 0.47-0.50 over a whole pool):
its picks are then random sampling at extra cost. These functions measure that after WAE/D
training, in eval mode, without gradients and without drawing from any random generator (the
models' train/eval flags are restored afterwards), so turning them on changes no training or
selection.

* **separation**: ROC AUC (:func:`sklearn.metrics.roc_auc_score`) of D's "labeled" probability
  with the labeled rows as positives; 0.5 = no separation. On the rows D trained on it measures
  the separation selection uses (selection ranks the unlabeled rows D trained on): near 0.5
  there, D's picks are close to random sampling, which :func:`chance_warning` reports. On
  held-out rows (``config.disc_holdout``) it measures whether D learned a difference between the
  labeled set and the pool that holds for rows it has not seen (evidence: docs/advise.md).
* **spread**: min, 5% / 50% / 95% quantiles, max and standard deviation of D's scores over the
  scored (unlabeled) rows and, for TA-VAAL, of the normalised rank r the decoder sees.
"""
from __future__ import annotations

import logging
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from .inference import predict, rank_inputs

log = logging.getLogger(__name__)

__all__ = ["spread", "separation_auc", "discriminator_outputs", "discriminator_diagnostics", "chance_warning",
           "CHANCE_MARGIN", "SPREAD_STATS"]

CHANCE_MARGIN = 0.05
"""An AUC within this distance of 0.5 counts as "no separation" (:func:`chance_warning`)."""
SPREAD_STATS = ("min", "q05", "median", "q95", "max", "std")


def spread(values: Sequence[float], prefix: str) -> Dict[str, Optional[float]]:
    """``{prefix_min, prefix_q05, prefix_median, prefix_q95, prefix_max, prefix_std}`` of
    ``values`` (population std); every entry None for an empty input."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return {f"{prefix}_{k}": None for k in SPREAD_STATS}
    q05, median, q95 = np.quantile(x, [0.05, 0.5, 0.95])
    stats = (x.min(), q05, median, q95, x.max(), x.std())
    return {f"{prefix}_{k}": float(v) for k, v in zip(SPREAD_STATS, stats)}


def separation_auc(labeled_scores: Sequence[float], unlabeled_scores: Sequence[float]) -> Optional[float]:
    """ROC AUC of scores that should be high for labeled rows (positives) and low for unlabeled
    ones: the probability that a random labeled row outscores a random unlabeled one (ties
    count half). None when either side is empty."""
    pos = np.asarray(labeled_scores, dtype=np.float64).reshape(-1)
    neg = np.asarray(unlabeled_scores, dtype=np.float64).reshape(-1)
    if pos.size == 0 or neg.size == 0:
        return None
    truth = np.concatenate([np.ones(pos.size), np.zeros(neg.size)])
    return float(roc_auc_score(truth, np.concatenate([pos, neg])))


def chance_warning(auc: Optional[float], where: str, margin: float = CHANCE_MARGIN) -> Optional[str]:
    """A warning text when ``auc`` lies within ``margin`` of 0.5 (None otherwise or without an AUC)."""
    if auc is None or abs(auc - 0.5) >= margin:
        return None
    return (f"the discriminator separates labeled from unlabeled {where} barely better than chance (AUC {auc:.3f}): "
            "its picks are then close to random sampling (train the WAE/D longer: wae_epochs, or a wider D: "
            "disc_hidden)")


@torch.no_grad()
def discriminator_outputs(models, dataset, rows: Sequence[int], *, task=None, batch_size: int = 512,
                          device="cpu") -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """D's "labeled" probability of ``dataset[rows]`` (N,) float64 and, for a rank-conditioned
    D, the normalised rank r the decoder sees (N,) (else None). ``models``: a
    :class:`tavaal.training.AdversarialModels`; ``task``: the task models with the Ranker
    (required when D is rank-conditioned). Evaluated in eval mode; every module's mode is
    restored afterwards."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return np.empty(0), None
    conditioned = models.rank_conditioned
    if conditioned and (task is None or task.ranker is None):
        raise ValueError("a rank-conditioned discriminator needs the task models with their Ranker")
    modules = [models.wae, models.discriminator] + ([task.backbone, task.ranker] if conditioned else [])
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        if conditioned:
            out = predict(dataset, rows, backbone=task.backbone, ranker=task.ranker, wae=models.wae,
                          outputs=("rank", "mu"), batch_size=batch_size, device=device)
            raw = out["rank"].to(device)
            r_dis = rank_inputs(raw, models.rank_mode, task.ranker)
            r_dec = task.ranker.normalize(raw).cpu().double().numpy()
        else:
            out = predict(dataset, rows, wae=models.wae, outputs=("mu",), batch_size=batch_size, device=device)
            r_dis, r_dec = None, None
        mu = out["mu"].to(device)
        scores = torch.cat([models.discriminator(None if r_dis is None else r_dis[i:i + batch_size],
                                                 mu[i:i + batch_size]).float()
                            for i in range(0, len(mu), batch_size)])
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
    return scores.cpu().double().numpy(), r_dec


def discriminator_diagnostics(models, dataset, *, labeled: Sequence[int], unlabeled: Sequence[int],
                              heldout_labeled: Sequence[int] = (), heldout_unlabeled: Sequence[int] = (),
                              task=None, batch_size: int = 512, device="cpu") -> Dict:
    """The per-cycle record of whether D learned (a flat, JSON-able dict):

    * ``disc_auc_train``: separation AUC on ``labeled`` vs ``unlabeled`` (the rows D trained on);
    * ``disc_auc_heldout``: on ``heldout_labeled`` vs ``heldout_unlabeled`` (None without them);
    * ``disc_heldout_labeled``, ``disc_heldout_unlabeled``: their sizes;
    * ``disc_score_{min,q05,median,q95,max,std}``: D over the scored rows (``unlabeled`` +
      ``heldout_unlabeled``, what selection ranks);
    * ``rank_{...}``: the same for r (TA-VAAL; None for VAAL);
    * ``disc_warning``: :func:`chance_warning` of ``disc_auc_train`` (the separation selection
      uses: it ranks the unlabeled rows D trained on), or None.
    """
    held_l, held_u = np.asarray(heldout_labeled, np.int64), np.asarray(heldout_unlabeled, np.int64)
    groups = [np.asarray(labeled, np.int64), np.asarray(unlabeled, np.int64), held_l, held_u]
    scores, ranks = discriminator_outputs(models, dataset, np.concatenate(groups), task=task, batch_size=batch_size,
                                          device=device)
    cuts = np.cumsum([g.size for g in groups])[:-1]
    train_l, train_u, test_l, test_u = np.split(scores, cuts)
    auc_train = separation_auc(train_l, train_u)
    result = {"disc_auc_train": auc_train, "disc_auc_heldout": separation_auc(test_l, test_u),
              "disc_heldout_labeled": int(held_l.size), "disc_heldout_unlabeled": int(held_u.size),
              **spread(np.concatenate([train_u, test_u]), "disc_score")}
    if ranks is None:
        result.update(spread([], "rank"))  # every rank_* entry None
    else:
        _, rank_u, _, rank_test_u = np.split(ranks, cuts)
        result.update(spread(np.concatenate([rank_u, rank_test_u]), "rank"))
    # selection ranks the rows D trained on: near-chance separation there means near-random picks
    warning = chance_warning(auc_train, "on the rows it trained on and scores")
    result["disc_warning"] = warning
    if warning:
        log.warning("%s", warning)
    return result
