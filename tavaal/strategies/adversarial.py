"""VAAL (Sinha et al. 2019) and TA-VAAL (eq. 7): the lowest discriminator scores."""
from __future__ import annotations

from .. import ops
from ..training import predict
from ..training.inference import rank_inputs
from .base import Strategy


class VAALStrategy(Strategy):
    """Lowest D(mu): the samples the discriminator finds least "labeled"-like."""

    name = "vaal"
    adversarial = "plain"

    def _models(self):
        adversarial = self.context.adversarial
        if adversarial is None:
            raise ValueError(f"strategy {self.name!r} needs trained WAE + discriminator in its SelectionContext")
        adversarial.train(self.config.score_mode == "train")
        return adversarial

    def pick(self, pool, candidates, budget):
        adversarial = self._models()
        mu = predict(self.context.dataset, candidates, wae=adversarial.wae, outputs=("mu",),
                     batch_size=self.config.score_batch_size, device=self.context.device)["mu"]
        return candidates[self._lowest_scores(adversarial, mu, None, budget)]

    def _lowest_scores(self, adversarial, mu, r, budget):
        """Positions of the ``budget`` lowest D(r, mu) (fused op; ``predict`` returns CPU tensors)."""
        disc = adversarial.discriminator.cpu()
        try:
            _, order = ops.score_topb(mu, r, disc, budget)
        finally:
            disc.to(self.context.device)
        return order.numpy()


class TAVAALStrategy(VAALStrategy):
    """Eq. (7): argmin over candidates of D(r, mu) with r from the Ranker, mu from the WAE encoder."""

    name = "tavaal"
    ranker_loss = "ranking"
    adversarial = "rank"

    def pick(self, pool, candidates, budget):
        task = self._require_task(need_ranker=True)
        task.eval()
        adversarial = self._models()
        out = predict(self.context.dataset, candidates, backbone=task.backbone, ranker=task.ranker,
                      wae=adversarial.wae, outputs=("rank", "mu"), batch_size=self.config.score_batch_size,
                      device=self.context.device)
        r = rank_inputs(out["rank"], adversarial.rank_mode)
        return candidates[self._lowest_scores(adversarial, out["mu"], r, budget)]
