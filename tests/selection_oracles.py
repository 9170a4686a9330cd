"""Independent oracles for what each selection method picks, and the live selection call.

The oracles compute a method's picks from the models' outputs with plain torch/numpy
(``tavaal.training.predict`` over the dataset, a stable argsort, a textbook greedy k-center),
never through :mod:`tavaal.scoring`; :func:`select_live` is the call production makes in a
simulated cycle (``Experiment.run_cycle`` -> :func:`tavaal.cycle.select_batch`);
:func:`trained_moons_learner` the models some of those tests share. No tests live here.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from tavaal.checkpoint import CycleModels
from tavaal.config import resolve_config
from tavaal.cycle import CycleData, cycle_spec, select_batch
from tavaal.data import Pool, load_dataset
from tavaal.training import build_task_models, predict, train_task_models
from tavaal.training.inference import rank_inputs, set_dropout_train


def trained_moons_learner():
    """``(data, config, pool, task)``: moons, 20 seeded labeled rows and a task learner (no
    Ranker) trained 10 epochs on them -- the models the uncertainty/BADGE live-path tests select with."""
    torch.manual_seed(0)
    data = load_dataset("moons", seed=0)
    config = resolve_config("moons", {"epochs": 10, "subset": 0, "budget": 10})
    pool = Pool.initial(len(data.train), 20, np.random.default_rng(0))
    task = build_task_models(config, data.input_shape, data.num_classes, with_ranker=False)
    train_task_models(task, data.train, pool.labeled, config, ranker_loss=None, seed=0)
    return data, config, pool, task


def select_live(config, data, labeled, method: str, budget: int, candidates, task, adversarial=None,
                seed: int = 0) -> np.ndarray:
    """The rows ``method`` selects in a simulated cycle: the cycle's models on the bundle's
    training source through :func:`tavaal.cycle.select_batch` with the cycle's generator."""
    labeled = np.asarray(labeled, dtype=np.int64)
    cycle = CycleData(data.train_source, labeled, None, data.num_classes, mean=data.mean, std=data.std,
                      name=data.name, view=data.train, view_task=data.task)
    models = CycleModels(cycle_spec(config, method, cycle), method, 0, 0, task, adversarial)
    return select_batch(models, data.train_source, budget, method=method, labeled=labeled,
                        candidates=np.asarray(candidates, dtype=np.int64), rng=np.random.default_rng(seed),
                        config=config, batch_size=config.score_batch_size).rows


def lowest(rows, scores, budget: int) -> np.ndarray:
    """``rows`` of the ``budget`` lowest scores, ties -> the earlier row."""
    return np.asarray(rows)[np.argsort(np.asarray(scores, dtype=np.float64), kind="stable")[:budget]]


def highest(rows, scores, budget: int) -> np.ndarray:
    """``rows`` of the ``budget`` highest scores, ties -> the earlier row."""
    return np.asarray(rows)[np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:budget]]


def discriminator_scores(dataset, rows, task, adversarial) -> np.ndarray:
    """D(r, mu) (TA-VAAL, eq. 7) or D(mu) (VAAL) of ``rows``: r from the Ranker as the
    discriminator sees it, mu the WAE posterior mean."""
    adversarial.train(False)
    disc = adversarial.discriminator
    if disc.rank_conditioned:
        task.eval()
        out = predict(dataset, rows, backbone=task.backbone, ranker=task.ranker, wae=adversarial.wae,
                      outputs=("rank", "mu"))
        with torch.no_grad():
            return disc(rank_inputs(out["rank"], adversarial.rank_mode, task.ranker), out["mu"]).numpy()
    mu = predict(dataset, rows, wae=adversarial.wae, outputs=("mu",))["mu"]
    with torch.no_grad():
        return disc(None, mu).numpy()


def predicted_loss(dataset, rows, task) -> np.ndarray:
    """The Ranker's raw predicted loss of ``rows`` (Learning Loss)."""
    task.eval()
    return predict(dataset, rows, backbone=task.backbone, ranker=task.ranker, outputs=("rank",))["rank"].numpy()


def probabilities(dataset, rows, task) -> np.ndarray:
    """float64 softmax of the task learner's logits on ``rows``."""
    task.eval()
    logits = predict(dataset, rows, backbone=task.backbone, outputs=("logits",))["logits"]
    return torch.softmax(logits.double(), dim=1).numpy()


def entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-300, None))).sum(1)


def margin(p: np.ndarray) -> np.ndarray:
    s = np.sort(p, axis=1)[:, ::-1]
    return s[:, 0] - s[:, 1]


def least_confidence(p: np.ndarray) -> np.ndarray:
    return 1.0 - p.max(axis=1)


def bald(p_samples: np.ndarray) -> np.ndarray:
    """Mutual information of (T, N, K) probability samples (float64)."""
    mean = p_samples.mean(0)
    return entropy(mean) - np.stack([entropy(p) for p in p_samples]).mean(0)


def mc_probabilities(dataset, rows, task, passes: int, torch_seed: int) -> np.ndarray:
    """(passes, N, K) softmax samples with only the Dropout layers in train mode, torch seeded
    with ``torch_seed``."""
    torch.manual_seed(torch_seed)
    task.eval()
    set_dropout_train(task.backbone, True)
    try:
        samples = [torch.softmax(predict(dataset, rows, backbone=task.backbone)["logits"].double(), 1).numpy()
                   for _ in range(passes)]
    finally:
        set_dropout_train(task.backbone, False)
    return np.stack(samples)


def greedy_kcenter(candidate_features: torch.Tensor, center_features: Optional[torch.Tensor], budget: int,
                   first: Optional[int] = None) -> list:
    """Textbook greedy k-center (float64): repeatedly the candidate farthest from every center
    so far; without centers the first pick is ``first``. Returns candidate positions."""
    x = candidate_features.double()
    if center_features is not None and len(center_features):
        min_dist = torch.cdist(x, center_features.double()).min(1).values
        picks = []
    else:
        picks = [int(first)]
        min_dist = torch.cdist(x, x[first:first + 1]).squeeze(1)
    while len(picks) < budget:
        i = int(torch.argmax(min_dist))
        picks.append(i)
        min_dist = torch.minimum(min_dist, torch.cdist(x, x[i:i + 1]).squeeze(1))
    return picks
