"""Models of TA-VAAL and its baselines.

* task learners (:mod:`.task`): ``ResNet18CIFAR``, ``ResNet18ImageNet``, ``MLPTaskLearner``,
  ``build_task_learner`` -- ``forward(x) -> (logits, feature, stages)``;
* the Ranker / loss-prediction module (:mod:`.ranker`): ``Ranker(stage_channels)``;
* the rank-conditioned WAE (:mod:`.wae`): ``ConditionalWAE``, ``build_wae``;
* the discriminator (:mod:`.discriminator`): ``Discriminator`` -- ``forward(r, mu)``.
"""
from .discriminator import Discriminator
from .ranker import Ranker
from .task import TASK_ARCHS, BasicBlock, MLPTaskLearner, ResNet18CIFAR, ResNet18ImageNet, build_task_learner
from .wae import WAE_VARIANTS, ConditionalWAE, MeanEncoder, build_wae

__all__ = [
    "BasicBlock",
    "ResNet18CIFAR",
    "ResNet18ImageNet",
    "MLPTaskLearner",
    "build_task_learner",
    "TASK_ARCHS",
    "Ranker",
    "ConditionalWAE",
    "MeanEncoder",
    "build_wae",
    "WAE_VARIANTS",
    "Discriminator",
]
