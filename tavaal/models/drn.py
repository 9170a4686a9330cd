"""Dilated residual networks for semantic segmentation (Yu, Koltun & Funkhouser, CVPR 2017).

TA-VAAL §4.4 uses DRN as the Cityscapes task learner. :class:`DRNSeg` follows the DRN-D
design (the "D" variant: conv stem instead of a 7x7/max-pool ResNet stem, residual levels
that trade stride for dilation, two non-residual de-gridding levels at the end) and keeps
the ``(logits, feature, stages)`` contract of the classification task learners
(:mod:`tavaal.models.task`), so the Ranker, the selection methods and the exporters use it as is.

Levels (``w = width``, the channels of the first residual level as ``width`` of the ResNets:
64 in DRN-D-22; ``layers`` counts convolutions for levels 1, 2, 7, 8 and basic residual blocks
for levels 3-6; DRN-D-22 is ``(1, 1, 2, 2, 2, 2, 1, 1)``)::

    level 0  conv 7x7, w/4,    stride 1            -> H
    level 1  conv 3x3, w/4,    stride 1            -> H
    level 2  conv 3x3, w/2,    stride 2            -> H/2
    level 3  res blocks, w,    stride 2            -> H/4     (stage 1)
    level 4  res blocks, 2w,   stride 2            -> H/8     (stage 2)
    level 5  res blocks, 4w,   dilation 2          -> H/8     (stage 3)
    level 6  res blocks, 8w,   dilation 4          -> H/8     (stage 4)
    level 7  conv 3x3,   8w,   dilation 2, no residual
    level 8  conv 3x3,   8w,   dilation 1, no residual  -> final map (B, 8w, H/8, W/8)
    head     [Dropout2d] -> 1x1 conv to K classes -> bilinear upsampling to (H, W)

Every conv is ``bias=False`` followed by BatchNorm and ReLU (after the residual sum inside
blocks). Outputs of ``forward(x)``:

* ``logits`` (B, K, H, W): class scores at input resolution (bilinear, align_corners=False);
* ``feature`` (B, 8w): global average of the final map (Core-set's embedding);
* ``stages``: the outputs of levels 3-6, (B, w, H/4, W/4), (B, 2w, H/8, W/8),
  (B, 4w, H/8, W/8), (B, 8w, H/8, W/8) -- what the Ranker pools (the same four-stage tap as
  ResNet-18 in Learning Loss / TA-VAAL).

Inputs of any size >= 8 px work (odd sizes included: the logits are resized to exactly H x W).
The DRN paper's segmentation head upsamples with a fixed bilinear transposed conv; a
bilinear ``interpolate`` is the same operation without parameters.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BasicBlock", "DRNSeg", "DRN_ARCHS", "build_drn", "check_sizes"]

DRN_ARCHS = {
    # name: (layers per level 1..8, default width)
    "drn-d-22": ((1, 1, 2, 2, 2, 2, 1, 1), 64),
    # CPU tests and demos: one block / conv per level (12 conv layers), same strides and dilations.
    "drn-d-small": ((1, 1, 1, 1, 1, 1, 1, 1), 16),
}


def check_sizes(dropout: float, **sizes: int) -> None:
    """ValueError unless every one of ``sizes`` is a positive integer and ``dropout`` is in [0, 1)."""
    for name, value in sizes.items():
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


def _conv_bn_relu(cin: int, cout: int, stride: int = 1, dilation: int = 1, kernel: int = 3) -> nn.Sequential:
    pad = dilation * (kernel // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=stride, padding=pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """ResNet basic block: 3x3 conv-BN-ReLU, 3x3 conv-BN, plus shortcut, ReLU after the sum.

    The shortcut is a 1x1 conv + BN when the stride is not 1 or the channel count changes
    (He et al. 2016, option B), the identity otherwise. ``dilation`` dilates (and pads) both
    3x3 convs: 1 in ResNet-18, 2 and 4 in DRN's last residual levels.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(planes))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def _level(layer, cin: int, cout: int, count: int, stride: int, dilation: int) -> nn.Sequential:
    """``count`` layers (``_conv_bn_relu`` or ``BasicBlock``): the first maps cin -> cout with
    ``stride``, the others keep cout at stride 1."""
    return nn.Sequential(*[layer(cin if i == 0 else cout, cout, stride if i == 0 else 1, dilation)
                           for i in range(count)])


# levels 1-8: (layer type, stride of the level's first layer, dilation)
_LEVELS = ((_conv_bn_relu, 1, 1), (_conv_bn_relu, 2, 1), (BasicBlock, 2, 1), (BasicBlock, 2, 1),
           (BasicBlock, 1, 2), (BasicBlock, 1, 4), (_conv_bn_relu, 1, 2), (_conv_bn_relu, 1, 1))


class DRNSeg(nn.Module):
    """DRN-D style segmentation network (see the module docstring for the levels).

    Args:
        num_classes: K (19 for Cityscapes train ids); any K >= 1.
        in_channels: image channels.
        width: channels of level 3, the first residual level (64 for DRN-D-22, like ResNet-18's
            first stage); a multiple of 4. Level k has ``width * (1/4, 1/4, 1/2, 1, 2, 4, 8, 8,
            8)[k]`` channels.
        layers: 8 counts, convolutions of levels 1, 2, 7, 8 and residual blocks of levels 3-6.
        dropout: probability of the ``Dropout2d`` before the classifier (MC-dropout switches
            ``self.dropout`` to train mode).

    Attributes: ``num_classes``, ``in_channels``, ``stage_channels`` (4 ints),
    ``feature_dim``, ``dropout``, ``dense = True`` (per-pixel logits; the training code uses
    it to pick the dense loss and the mIoU metric).
    """

    dense = True

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64,
                 layers: Sequence[int] = DRN_ARCHS["drn-d-22"][0], dropout: float = 0.0):
        super().__init__()
        layers = [int(n) for n in layers]
        if len(layers) != 8 or any(n < 1 for n in layers):
            raise ValueError(f"layers must be 8 positive counts (levels 1-8), got {layers}")
        check_sizes(dropout, num_classes=num_classes, in_channels=in_channels, width=width)
        if int(width) % 4:
            raise ValueError(f"width must be a multiple of 4 (level 0 has width / 4 channels), got {width}")
        self.num_classes, self.in_channels, self.width = int(num_classes), int(in_channels), int(width)
        self.layers = tuple(layers)
        w = self.width
        ch = [w // 4, w // 4, w // 2, w, 2 * w, 4 * w, 8 * w, 8 * w, 8 * w]
        self.level0 = _conv_bn_relu(self.in_channels, ch[0], kernel=7)
        for k, ((layer, stride, dilation), count) in enumerate(zip(_LEVELS, layers), start=1):
            setattr(self, f"level{k}", _level(layer, ch[k - 1], ch[k], count, stride, dilation))
        self.stage_channels: List[int] = ch[3:7]
        self.feature_dim = ch[8]
        self.dropout = nn.Dropout2d(p=float(dropout))
        self.classifier = nn.Conv2d(ch[8], self.num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m is not self.classifier:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, List[torch.Tensor]]:
        """x (B, C, H, W) -> (logits (B, K, H, W), feature (B, 8w), [4 stage maps])."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"DRNSeg expects (B, {self.in_channels}, H, W) input, got shape {list(x.shape)}")
        if not torch.jit.is_tracing() and min(x.shape[-2:]) < 8:
            raise ValueError(f"DRNSeg needs images of at least 8x8 pixels, got {list(x.shape[-2:])}")
        h, w = x.shape[-2], x.shape[-1]
        out = self.level2(self.level1(self.level0(x)))
        s1 = self.level3(out)
        s2 = self.level4(s1)
        s3 = self.level5(s2)
        s4 = self.level6(s3)
        final = self.level8(self.level7(s4))
        feature = final.mean(dim=(2, 3))
        logits = self.classifier(self.dropout(final))
        logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        return logits, feature, [s1, s2, s3, s4]


def build_drn(arch: str, num_classes: int, in_channels: int = 3, width: int | None = None,
              dropout: float = 0.0) -> DRNSeg:
    """``DRNSeg`` of a named size: "drn-d-22" (paper; width 64) or "drn-d-small" (CPU; width 16).

    ``width=None`` uses the architecture's default width."""
    if arch not in DRN_ARCHS:
        raise ValueError(f"unknown DRN arch {arch!r}; choose one of {tuple(DRN_ARCHS)}")
    layers, default_width = DRN_ARCHS[arch]
    return DRNSeg(num_classes, in_channels=in_channels, width=default_width if width is None else width,
                  layers=layers, dropout=dropout)
