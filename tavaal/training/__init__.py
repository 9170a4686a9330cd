"""Training of the task learner + Ranker (Algorithm 1, eq. 2) and of the conditional WAE +
discriminator (eqs. 3-6), batched inference helpers, and whether D learned (:mod:`.diagnostics`)."""
from .task import TaskModels, build_task_models, evaluate_accuracy, evaluate_task, train_task_models
from .adversarial import AdversarialModels, build_adversarial_models, train_adversarial_models, wae_iterations
from .diagnostics import discriminator_diagnostics, separation_auc, spread
from .inference import predict

__all__ = [
    "TaskModels", "build_task_models", "train_task_models", "evaluate_accuracy", "evaluate_task",
    "AdversarialModels", "build_adversarial_models", "train_adversarial_models", "wae_iterations",
    "predict", "discriminator_diagnostics", "separation_auc", "spread",
]
