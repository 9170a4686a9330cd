"""Task learners: the models whose labels are being acquired.

Every task learner maps a batch ``x`` to ``(logits, feature, stages)``:

* ``logits``  (B, K) class scores;
* ``feature`` (B, F) the penultimate representation (pooled ResNet feature, last MLP hidden
  layer), returned *before* dropout; Core-set runs k-center greedy on it;
* ``stages``  list of intermediate activations the Ranker (loss-prediction module) reads:
  the four ResNet stage outputs (B, C_k, H_k, W_k), or the MLP's mid-layer activation (B, h).

and exposes ``stage_channels`` (channel count of each entry of ``stages``), ``feature_dim`` and
``num_classes``. ``self.dropout`` (an ``nn.Dropout``) sits between ``feature`` and the
classifier; MC-dropout switches just that module to train mode at inference.

Initialisation is PyTorch's default, as in the official TA-VAAL code (no custom init).
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "BasicBlock",
    "ResNet18CIFAR",
    "ResNet18ImageNet",
    "MLPTaskLearner",
    "build_task_learner",
    "TASK_ARCHS",
]

TASK_ARCHS = ("auto", "resnet18-cifar", "resnet18-imagenet", "mlp")


class BasicBlock(nn.Module):
    """ResNet basic block: 3x3 conv-BN-ReLU, 3x3 conv-BN, plus shortcut, ReLU after the sum.

    The shortcut is a 1x1 conv + BN when the stride is not 1 or the channel count changes
    (He et al. 2016, option B), the identity otherwise.
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        else:
            self.shortcut = nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class _ResNet18(nn.Module):
    """Shared body of the two ResNet-18 variants; subclasses define ``self.stem``."""

    def __init__(self, num_classes: int, in_channels: int, width: int, dropout: float):
        super().__init__()
        _check_positive(num_classes=num_classes, in_channels=in_channels, width=width)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        self.width = int(width)
        widths = [self.width * m for m in (1, 2, 4, 8)]
        self.stage_channels: List[int] = list(widths)
        self.feature_dim = widths[-1]
        in_planes = self.width
        stages = []
        for planes, stride in zip(widths, (1, 2, 2, 2)):
            stages.append(nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1)))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=float(dropout))
        self.linear = nn.Linear(self.feature_dim, self.num_classes)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, List[torch.Tensor]]:
        """x (B, C, H, W) -> (logits (B, K), feature (B, 8*width), [4 stage maps])."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ResNet-18 expects (B, {self.in_channels}, H, W) input, got shape {list(x.shape)}")
        out = self.stem(x)
        out1 = self.layer1(out)
        out2 = self.layer2(out1)
        out3 = self.layer3(out2)
        out4 = self.layer4(out3)
        feature = torch.flatten(self.pool(out4), 1)
        logits = self.linear(self.dropout(feature))
        return logits, feature, [out1, out2, out3, out4]


class ResNet18CIFAR(_ResNet18):
    """ResNet-18 for small images (the kuangliu/"pytorch-cifar" variant used by TA-VAAL).

    3x3 stride-1 stem (conv-BN-ReLU, no max-pool); four stages of two BasicBlocks with widths
    ``width * (1, 2, 4, 8)`` and strides 1, 2, 2, 2; adaptive global average pool (the
    official code's ``avg_pool2d(out, 4)`` only fits 32 px); optional dropout; Linear.
    For a 32x32 input the stage maps are 32, 16, 8 and 4 pixels wide. Works for any input
    of at least 8 px and any channel count (1 for MNIST-like and digits data).

    Args:
        num_classes: K.
        in_channels: image channels.
        width: channels of the first stage (64 in the paper; smaller for CPU runs).
        dropout: probability of the dropout applied to ``feature`` before the classifier.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64, dropout: float = 0.0):
        super().__init__(num_classes, in_channels, width, dropout)
        self.stem = nn.Sequential(
            nn.Conv2d(self.in_channels, self.width, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(self.width),
            nn.ReLU(inplace=True),
        )


class ResNet18ImageNet(_ResNet18):
    """ResNet-18 with the ImageNet stem (7x7 stride-2 conv-BN-ReLU + 3x3 stride-2 max-pool).

    Same stages, pooling, dropout and classifier as :class:`ResNet18CIFAR`; meant for images of
    64 px and more (224 px: stage maps 56, 28, 14, 7). Smaller inputs still run but lose
    resolution quickly.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64, dropout: float = 0.0):
        super().__init__(num_classes, in_channels, width, dropout)
        self.stem = nn.Sequential(
            nn.Conv2d(self.in_channels, self.width, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(self.width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )


class MLPTaskLearner(nn.Module):
    """The paper's toy task learner (§4.1): a 3-layer MLP with ReLU.

    With the default ``hidden=(64, 64)`` the layers are
    ``Linear(D, 64) -> ReLU -> Linear(64, 64) -> ReLU -> [dropout] -> Linear(64, K)``.
    ``feature`` is the last hidden activation. The paper attaches the Ranker ("a single layer
    perceptron") to the *mid layer* of the task learner: ``stages`` holds one tensor, the
    activation after the middle Linear layer, i.e. Linear layer number
    ``ranker_layer`` (0-based, default ``len(hidden) // 2``, the 2nd of 3 layers for the
    default). Inputs with more than one non-batch dimension are flattened.

    Args:
        in_features: D (product of the input shape for non-vector inputs).
        num_classes: K.
        hidden: widths of the hidden layers (``len(hidden) + 1`` Linear layers in all).
        dropout: probability of the dropout applied to ``feature`` before the classifier.
        ranker_layer: which hidden activation (0-based) the Ranker reads; default the middle one.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (64, 64),
        dropout: float = 0.0,
        ranker_layer: int | None = None,
    ):
        super().__init__()
        hidden = [int(h) for h in hidden]
        if not hidden:
            raise ValueError("hidden must name at least one hidden layer")
        _check_positive(in_features=in_features, num_classes=num_classes, **{f"hidden[{i}]": h for i, h in enumerate(hidden)})
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if ranker_layer is None:
            ranker_layer = len(hidden) // 2
        if not 0 <= ranker_layer < len(hidden):
            raise ValueError(f"ranker_layer must be in [0, {len(hidden)}), got {ranker_layer}")
        self.in_features = int(in_features)
        self.num_classes = int(num_classes)
        self.ranker_layer = int(ranker_layer)
        dims = [self.in_features] + hidden
        self.hidden_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.dropout = nn.Dropout(p=float(dropout))
        self.linear = nn.Linear(hidden[-1], self.num_classes)
        self.stage_channels: List[int] = [hidden[self.ranker_layer]]
        self.feature_dim = hidden[-1]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, List[torch.Tensor]]:
        """x (B, D) (or (B, ...) flattened to D) -> (logits (B, K), feature (B, h_last), [mid (B, h_mid)])."""
        if x.dim() > 2:
            x = torch.flatten(x, 1)
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"MLPTaskLearner expects (B, {self.in_features}) input, got shape {list(x.shape)}")
        h = x
        stages: List[torch.Tensor] = []
        for i, layer in enumerate(self.hidden_layers):
            h = F.relu(layer(h))
            if i == self.ranker_layer:
                stages.append(h)
        logits = self.linear(self.dropout(h))
        return logits, h, stages


def build_task_learner(
    input_shape: Sequence[int],
    num_classes: int,
    arch: str = "auto",
    width: int = 64,
    dropout: float = 0.0,
) -> nn.Module:
    """Task learner for inputs of shape ``input_shape`` ((C, H, W) images or (D,) vectors).

    ``arch``: "auto" (MLP for vectors, "resnet18-cifar" for images smaller than 64 px on their
    shorter side, "resnet18-imagenet" otherwise), or one of "resnet18-cifar",
    "resnet18-imagenet", "mlp". ``width`` is the first-stage width of the ResNets, and the
    width of both hidden layers of the MLP (``hidden=(width, width)``). An MLP on an image
    flattens it.
    """
    shape = tuple(int(s) for s in input_shape)
    if arch not in TASK_ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {TASK_ARCHS}")
    if len(shape) not in (1, 3) or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be (C, H, W) or (D,) with positive sizes, got {shape}")
    if arch == "auto":
        if len(shape) == 1:
            arch = "mlp"
        else:
            arch = "resnet18-cifar" if min(shape[1:]) < 64 else "resnet18-imagenet"
    if arch == "mlp":
        return MLPTaskLearner(math.prod(shape), num_classes, hidden=(width, width), dropout=dropout)
    if len(shape) != 3:
        raise ValueError(f"arch {arch!r} needs image inputs (C, H, W), got input_shape {shape}")
    cls = ResNet18CIFAR if arch == "resnet18-cifar" else ResNet18ImageNet
    return cls(num_classes, in_channels=shape[0], width=width, dropout=dropout)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}")
