"""Models of TA-VAAL and its baselines.

* task learners (:mod:`.task`): ``ResNet18CIFAR``, ``ResNet18ImageNet``, ``MLPTaskLearner``,
  ``build_task_learner`` -- ``forward(x) -> (logits, feature, stages)``; any user classifier
  through ``TappedClassifier`` (forward hooks on named submodules), ``resolve_model``,
  ``build_user_model``, ``load_initial_weights``;
* segmentation task learners (:mod:`.drn`): ``DRNSeg`` (DRN-D style), ``build_drn`` --
  ``forward(x) -> (logits (B, K, H, W), feature, stages)``;
* the Ranker / loss-prediction module (:mod:`.ranker`): ``Ranker(stage_channels)``;
* the rank-conditioned WAE (:mod:`.wae`): ``ConditionalWAE``, ``build_wae``;
* the discriminator (:mod:`.discriminator`): ``Discriminator`` -- ``forward(r, mu)``.
"""
from .discriminator import Discriminator
from .drn import DRN_ARCHS, BasicBlock, DRNSeg, build_drn
from .ranker import Ranker
from .task import (TASK_ARCHS, MLPTaskLearner, ResNet18CIFAR, ResNet18ImageNet, TappedClassifier, build_task_learner,
                   build_user_model, load_initial_weights, resolve_model)
from .wae import WAE_VARIANTS, ConditionalWAE, MeanEncoder, build_wae

__all__ = ["BasicBlock", "ResNet18CIFAR", "ResNet18ImageNet", "MLPTaskLearner", "build_task_learner", "TASK_ARCHS",
           "TappedClassifier", "resolve_model", "build_user_model", "load_initial_weights", "DRNSeg", "build_drn",
           "DRN_ARCHS", "Ranker", "ConditionalWAE", "MeanEncoder", "build_wae", "WAE_VARIANTS", "Discriminator"]
