"""The same RegNet in PyTorch, generated from regnet_keras' own design description.

Used only by the benchmarks to compare against PyTorch's CPU speed on an identical architecture
(stem, X/Y blocks, SE from the block input width, symmetric padding, head); torch is never a
dependency of the library.
"""

import torch
from torch import nn

from regnet_keras.complexity import has_projection, squeeze_excite_width


def _conv_bn(in_channels, out_channels, kernel, stride=1, groups=1):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups,
                  bias=False),
        nn.BatchNorm2d(out_channels, eps=1e-5, momentum=0.1))


class SqueezeExcite(nn.Module):
    def __init__(self, width, se_width):
        super().__init__()
        self.reduce = nn.Conv2d(width, se_width, 1)
        self.expand = nn.Conv2d(se_width, width, 1)

    def forward(self, x):
        scale = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(torch.relu(self.reduce(scale))))


class Block(nn.Module):
    def __init__(self, in_width, spec, stride, se_ratio):
        super().__init__()
        inner = spec.inner_width
        layers = [_conv_bn(in_width, inner, 1), nn.ReLU(inplace=True),
                  _conv_bn(inner, inner, 3, stride, spec.groups), nn.ReLU(inplace=True)]
        if se_ratio > 0:
            layers.append(SqueezeExcite(inner, squeeze_excite_width(in_width, se_ratio)))
        layers.append(_conv_bn(inner, spec.width, 1))
        self.body = nn.Sequential(*layers)
        self.projection = (_conv_bn(in_width, spec.width, 1, stride)
                           if has_projection(in_width, spec.width, stride) else nn.Identity())

    def forward(self, x):
        return torch.relu(self.body(x) + self.projection(x))


class RegNet(nn.Module):
    def __init__(self, config, classes):
        super().__init__()
        anynet = config.to_anynet()
        layers = [_conv_bn(3, anynet.stem_width, 3, 2), nn.ReLU(inplace=True)]
        in_width = anynet.stem_width
        for spec in anynet.stages:
            for index in range(spec.depth):
                layers.append(Block(in_width, spec, spec.stride if index == 0 else 1,
                                    anynet.se_ratio))
                in_width = spec.width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(in_width, classes)

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))
