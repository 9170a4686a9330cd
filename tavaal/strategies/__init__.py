"""Selection strategies behind one interface: ``Strategy(context).select(pool, budget)``.

A strategy class says how a cycle trains for its method (Ranker loss, adversarial models,
dropout, subset); its selection is inherited from :class:`Strategy` and runs the one
selection path, :func:`tavaal.scoring.select_from_pool` over the cycle's live models
(:meth:`tavaal.scoring.Scorer.from_models`), with the method of :mod:`tavaal.scoring.methods`
of the same name."""
from .adversarial import TAVAALStrategy, VAALStrategy
from .badge import BadgeStrategy
from .base import SelectionContext, Strategy, check_budget
from .coreset import CoreSetStrategy
from .lloss import LearningLossStrategy, LearningLossV2Strategy
from .mcdropout import MCDropoutStrategy, bald_scores
from .simple import EntropyStrategy, RandomStrategy
from .uncertainty import LeastConfidenceStrategy, MarginStrategy

STRATEGIES = {cls.name: cls for cls in (RandomStrategy, EntropyStrategy, MCDropoutStrategy, CoreSetStrategy,
                                        LearningLossStrategy, LearningLossV2Strategy, VAALStrategy, TAVAALStrategy,
                                        MarginStrategy, LeastConfidenceStrategy, BadgeStrategy)}


def get_strategy(name: str):
    """The Strategy class registered under ``name``."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(STRATEGIES)}") from None


__all__ = ["STRATEGIES", "get_strategy", "SelectionContext", "Strategy", "check_budget",
           "RandomStrategy", "EntropyStrategy", "MCDropoutStrategy", "CoreSetStrategy", "LearningLossStrategy",
           "LearningLossV2Strategy", "VAALStrategy", "TAVAALStrategy", "MarginStrategy", "LeastConfidenceStrategy",
           "BadgeStrategy", "bald_scores"]
