"""Selection strategies behind one interface: ``Strategy(context).select(pool, budget)``."""
from .adversarial import TAVAALStrategy, VAALStrategy
from .base import SelectionContext, Strategy, check_budget
from .coreset import CoreSetStrategy
from .lloss import LearningLossStrategy, LearningLossV2Strategy
from .mcdropout import MCDropoutStrategy, bald_scores
from .simple import EntropyStrategy, RandomStrategy

STRATEGIES = {cls.name: cls for cls in (RandomStrategy, EntropyStrategy, MCDropoutStrategy, CoreSetStrategy,
                                        LearningLossStrategy, LearningLossV2Strategy, VAALStrategy, TAVAALStrategy)}


def get_strategy(name: str):
    """The Strategy class registered under ``name``."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(STRATEGIES)}") from None


__all__ = ["STRATEGIES", "get_strategy", "SelectionContext", "Strategy", "check_budget",
           "RandomStrategy", "EntropyStrategy", "MCDropoutStrategy", "CoreSetStrategy", "LearningLossStrategy",
           "LearningLossV2Strategy", "VAALStrategy", "TAVAALStrategy", "bald_scores"]
