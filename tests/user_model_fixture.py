"""A small user classifier for the bring-your-own-model tests (importable as
``user_model_fixture:two_tap_net``). No tests live here."""
from torch import nn


class TwoTapNet(nn.Module):
    """conv -> block1 -> block2 -> pool -> head, for (C, H, W) images; nothing tavaal-specific."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 8, dropout: float = 0.0):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.block1 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.block2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.head(self.drop(self.pool(x).flatten(1)))


def two_tap_net(num_classes: int = 10, in_channels: int = 1, width: int = 8, dropout: float = 0.0) -> TwoTapNet:
    return TwoTapNet(num_classes, in_channels, width, dropout)


def rgb_two_tap_net(num_classes: int = 10) -> TwoTapNet:
    """:class:`TwoTapNet` for 3-channel (RGB) images."""
    return TwoTapNet(num_classes, in_channels=3)


class DictOutputNet(TwoTapNet):
    """:class:`TwoTapNet` whose forward returns ``{"logits": ..., "embedding": ...}`` (as many
    detection/segmentation-style models do)."""

    def forward(self, x):
        x = self.pool(self.block2(self.block1(self.stem(x)))).flatten(1)
        return {"logits": self.head(self.drop(x)), "embedding": x}


def dict_output_net(num_classes: int = 10) -> DictOutputNet:
    return DictOutputNet(num_classes)
