"""Flow architectures (nflows): the CATHODE affine MAF and the R-ANODE spline flow.

* :func:`build_maf` -- the ANODE/CATHODE background model: ``n_blocks`` affine
  MADE blocks (one hidden layer of ``hidden`` units plus the in/out layers, as
  in the published pytorch-flows MADE), batch normalisation and order reversal
  between blocks, standard-normal base, conditioned on mjj.
* :func:`build_rqs_flow` -- the R-ANODE signal (and ANODE data) model:
  rational-quadratic spline autoregressive transforms (Durkan et al.), by
  default 6 transforms of 2 blocks x 64 units, dropout 0.2, 8 bins, tail
  bound 8, batch normalisation between transforms.
"""

from __future__ import annotations

from nflows.distributions.normal import StandardNormal
from nflows.flows.base import Flow
from nflows.transforms.autoregressive import (
    MaskedAffineAutoregressiveTransform,
    MaskedPiecewiseRationalQuadraticAutoregressiveTransform,
)
from nflows.transforms.base import CompositeTransform
from nflows.transforms.normalization import BatchNorm
from nflows.transforms.permutations import ReversePermutation

__all__ = ["build_maf", "build_rqs_flow"]


def build_maf(
    n_features: int,
    *,
    n_blocks: int = 15,
    hidden: int = 128,
    context_features: int = 1,
    batch_norm: bool = True,
) -> Flow:
    """Conditional affine MAF p(z | c) with a standard-normal base."""
    transforms = []
    for i in range(n_blocks):
        transforms.append(
            MaskedAffineAutoregressiveTransform(
                features=n_features,
                hidden_features=hidden,
                context_features=context_features,
                num_blocks=1,
                use_residual_blocks=False,
            )
        )
        if i < n_blocks - 1:
            if batch_norm:
                transforms.append(BatchNorm(n_features))
            transforms.append(ReversePermutation(n_features))
    return Flow(CompositeTransform(transforms), StandardNormal([n_features]))


def build_rqs_flow(
    n_features: int,
    *,
    n_transforms: int = 6,
    n_blocks: int = 2,
    hidden: int = 64,
    dropout: float = 0.2,
    n_bins: int = 8,
    tail_bound: float = 8.0,
    batch_norm: bool = True,
    context_features: int = 1,
) -> Flow:
    """Conditional rational-quadratic-spline autoregressive flow p(z | c)."""
    transforms = []
    for i in range(n_transforms):
        transforms.append(
            MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
                features=n_features,
                hidden_features=hidden,
                context_features=context_features,
                num_bins=n_bins,
                tails="linear",
                tail_bound=tail_bound,
                num_blocks=n_blocks,
                use_residual_blocks=False,
                dropout_probability=dropout,
            )
        )
        if i < n_transforms - 1:
            if batch_norm:
                transforms.append(BatchNorm(n_features))
            transforms.append(ReversePermutation(n_features))
    return Flow(CompositeTransform(transforms), StandardNormal([n_features]))
