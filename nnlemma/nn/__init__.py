"""PyTorch-style model API: ``nl.nn.Module``, ``Parameter`` and layers."""

from .layers import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Flatten, Hardtanh, Identity, LeakyReLU,
                     Linear, MaxPool2d, ReLU, Sequential, Sigmoid, Tanh)
from .module import Module, Parameter

__all__ = ["AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "Flatten", "Hardtanh", "Identity", "LeakyReLU",
           "Linear", "MaxPool2d", "Module", "Parameter", "ReLU", "Sequential", "Sigmoid", "Tanh"]
