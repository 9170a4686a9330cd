"""Learning Loss (Yoo & Kweon 2019) and the paper's Learning Loss v2: highest predicted loss."""
from __future__ import annotations

from .. import ops
from ..training import predict
from .base import Strategy


class LearningLossStrategy(Strategy):
    """The Ranker trained with the margin loss (margin 1); picks the highest predicted loss."""

    name = "lloss"
    ranker_loss = "margin"

    def pick(self, pool, candidates, budget):
        task = self._require_task(need_ranker=True)
        task.eval()
        rank = predict(self.context.dataset, candidates, backbone=task.backbone, ranker=task.ranker,
                       outputs=("rank",), batch_size=self.config.score_batch_size, device=self.context.device)["rank"]
        _, order = ops.topb(rank, budget, largest=True)
        return candidates[order.numpy()]


class LearningLossV2Strategy(LearningLossStrategy):
    """Learning Loss with the Ranker trained by the ranking loss of eq. (1) ("learning loss_v2")."""

    name = "lloss2"
    ranker_loss = "ranking"
