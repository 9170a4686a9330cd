"""Training of the task learner + Ranker (Algorithm 1, eq. 2) and of the conditional WAE +
discriminator (eqs. 3-6), plus batched inference helpers used by the strategies."""
from .task import TaskModels, build_task_models, evaluate_accuracy, evaluate_task, train_task_models
from .adversarial import AdversarialModels, build_adversarial_models, train_adversarial_models, wae_iterations
from .inference import predict

__all__ = [
    "TaskModels", "build_task_models", "train_task_models", "evaluate_accuracy", "evaluate_task",
    "AdversarialModels", "build_adversarial_models", "train_adversarial_models", "wae_iterations",
    "predict",
]
