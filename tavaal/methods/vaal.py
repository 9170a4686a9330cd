"""VAAL (Sinha et al. 2019): the lowest D(mu), the samples the discriminator finds least
"labeled"-like (fused selection through ``tavaal.ops.score_topb``)."""
from .base import Method, ScoreRule

METHOD = Method("vaal", "VAAL", "VAAL: lowest D(mu)",
                rule=ScoreRule("scorer", None, largest=False, fused=True, rank_conditioned=False),
                adversarial="plain", color="tab:pink")
