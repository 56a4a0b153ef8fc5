"""A frozen first layer that whitens image patches, as in the CIFAR-10 speed records
(KellerJordan/cifar10-airbench, after tysam-code/hlb-CIFAR10)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def patches(x: Tensor, kernel_size: int) -> Tensor:
    """Every ``kernel_size`` x ``kernel_size`` patch of a batch (N, C, H, W), one row each,
    flattened as a conv weight of that shape is: (N * H' * W', C * k * k)."""
    unfolded = F.unfold(x.float(), kernel_size)  # (N, C*k*k, H'*W')
    return unfolded.transpose(1, 2).reshape(-1, unfolded.shape[1])


class PatchWhitening(nn.Module):
    """A ``kernel_size`` convolution (no padding) whose filters are fixed, not learned: the
    eigenvectors of the covariance of the training images' patches, each scaled by one over the
    square root of its eigenvalue, and their negatives. Its first half of outputs is the patches
    whitened (covariance the identity); with the negatives, a ReLU after it loses nothing.
    Out channels: ``2 * in_channels * kernel_size**2``; only the bias is trained. ``bias=False``
    leaves the layer nothing to train: the backward pass then stops at the next layer, whose
    input gradient (the costliest of a step at full resolution) is never computed.

    The filters are fitted on the first batch the layer sees in training mode (a batch of 256
    28x28 images has over 40,000 patches, plenty for a 16x16 covariance), and are then kept in
    the state dict with ``fitted``: a resumed or loaded net never refits.
    """

    def __init__(self, in_channels: int = 1, kernel_size: int = 2, eps: float = 5e-4, bias: bool = True):
        super().__init__()
        self.kernel_size = kernel_size
        self.eps = eps
        dim = in_channels * kernel_size * kernel_size
        self.out_channels = 2 * dim
        self.register_buffer("weight", torch.zeros(2 * dim, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(2 * dim)) if bias else None
        self.register_buffer("fitted", torch.tensor(False))

    @torch.no_grad()
    def fit(self, x: Tensor) -> None:
        """Set the filters from the patches of ``x`` (N, C, H, W), in float32 (under mixed
        precision too: a bf16 covariance would not whiten)."""
        with torch.autocast(x.device.type, enabled=False):
            self._fit(x)

    def _fit(self, x: Tensor) -> None:
        rows = patches(x, self.kernel_size)
        rows = rows - rows.mean(dim=0)
        covariance = rows.T @ rows / len(rows)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending; columns are the vectors
        filters = (eigenvectors / torch.sqrt(eigenvalues.clamp(min=0) + self.eps)).T
        filters = filters.flip(0).reshape(-1, *self.weight.shape[1:])  # the largest eigenvalue first
        self.weight.copy_(torch.cat([filters, -filters]))
        self.fitted.fill_(True)

    def forward(self, x: Tensor) -> Tensor:
        if self.training and not self.fitted:
            self.fit(x)
        return F.conv2d(x, self.weight, self.bias)
