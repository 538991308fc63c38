"""The network: a small fully convolutional centre-heatmap detector at stride 4.

A frame (one grey channel, normalised by `edge.detection.thermal_learned.normalise`)
goes down to stride 32 for context (a car is up to 100 px long) and back up to
stride 4, where the view geometry joins (three channels: known, log scale,
sin depression; zeros when the node has no pose). Out at stride 4: one heatmap
per class (logits), the box size (log of px / 4) and the centre's sub-cell
offset. The peaks (3x3 local maxima of the class heatmaps) are taken in the
graph, so the edge only thresholds them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

CLASSES = ("person", "vehicle", "animal")
STRIDE = 4
GEOMETRY_CHANNELS = 3


def conv(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Residual(nn.Module):
    """Two 3x3 convolutions with a shortcut."""

    def __init__(self, channels: int):
        super().__init__()
        self.first = conv(channels, channels)
        self.second = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
                                    nn.BatchNorm2d(channels))

    def forward(self, x):
        return F.relu(x + self.second(self.first(x)))


class CentreNet(nn.Module):
    def __init__(self, width: int = 16, context: bool = True):
        """`context`: a stride-32 stage on top, so that a car 100 px long is seen whole
        (it costs a tenth more; False is the first version, without it)."""
        super().__init__()
        w = width
        # Each 4x4 patch of pixels into w channels at once: a learned space-to-depth, far
        # cheaper at full resolution than strided 3x3 layers, and it loses nothing.
        self.stem = nn.Sequential(nn.Conv2d(1, w, STRIDE, STRIDE, bias=False),
                                  nn.BatchNorm2d(w), nn.ReLU(inplace=True), conv(w, w))
        self.down8 = nn.Sequential(conv(w, 2 * w, 2), Residual(2 * w))
        self.down16 = nn.Sequential(conv(2 * w, 4 * w, 2), Residual(4 * w))
        self.down32 = nn.Sequential(conv(4 * w, 4 * w, 2), Residual(4 * w)) if context else None
        self.lateral16 = conv(4 * w, 2 * w, kernel=1)
        self.lateral8 = conv(2 * w, w, kernel=1)
        self.merge = conv(w + GEOMETRY_CHANNELS, w)
        self.heat = nn.Conv2d(w, len(CLASSES), 1)
        self.size = nn.Conv2d(w, 2, 1)
        self.offset = nn.Conv2d(w, 2, 1)
        nn.init.constant_(self.heat.bias, -4.6)  # sigmoid 0.01: few centres at the start

    def features(self, image, geometry):
        x4 = self.stem(image)
        x8 = self.down8(x4)
        x16 = self.down16(x8)
        if self.down32 is not None:
            x16 = x16 + F.interpolate(self.down32(x16), size=x16.shape[-2:], mode="nearest")
        up8 = x8 + F.interpolate(self.lateral16(x16), size=x8.shape[-2:], mode="nearest")
        up4 = x4 + F.interpolate(self.lateral8(up8), size=x4.shape[-2:], mode="nearest")
        return self.merge(torch.cat([up4, geometry], dim=1))

    def forward(self, image, geometry):
        """Training outputs: (heat logits, log size, offset)."""
        x = self.features(image, geometry)
        return self.heat(x), self.size(x), self.offset(x)


class Exported(nn.Module):
    """What the edge runs: class probabilities at their local maxima (else 0), size, offset."""

    def __init__(self, net: CentreNet):
        super().__init__()
        self.net = net

    def forward(self, image, geometry):
        heat, size, offset = self.net(image, geometry)
        probability = torch.sigmoid(heat)
        strongest = probability.amax(dim=1, keepdim=True)
        peaks = strongest == F.max_pool2d(strongest, 3, 1, 1)
        return probability * peaks, size, offset
