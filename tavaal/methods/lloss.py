"""Learning Loss (Yoo & Kweon 2019): the Ranker trained with the margin loss (margin 1);
picks the highest predicted loss."""
from .base import Method, ScoreRule

METHOD = Method("lloss", "Learning loss", "Learning Loss: highest predicted loss",
                rule=ScoreRule("ranker", lambda out: out["loss"], largest=True), ranker_loss="margin",
                color="tab:cyan")
