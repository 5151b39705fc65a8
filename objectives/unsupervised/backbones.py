"""Backbones: torch modules mapping standardised event tensors to an embedding.

Every backbone is called as ``net(objects, mask, event)`` with
``objects (n, P, F)`` (one-hot type + standardised kinematics, zero where
padded), ``mask (n, P)`` bool and ``event (n, E)`` (standardised), and
returns ``(n, out_dim)``. A padded object never influences the output: the
MLP multiplies its inputs by the mask, the transformer excludes padded keys
from every attention and zeroes padded tokens after every block. The output
head (a logit, or the bias-free Deep SVDD projection) belongs to the method.

* ``MLPBackbone`` -- the poster's MLP (seed 002): flattened masked object
  features and event features -> Dense 16 relu -> BatchNorm -> Dense 8 relu
  -> BatchNorm. ``bias=False`` builds it without bias terms and without the
  batch normalisations (Deep SVDD, Ruff et al. 2018): a batch norm subtracts the
  batch mean, after which the activation has a non-zero mean again -- a constant
  feature, i.e. a bias in disguise -- and the Deep SVDD maps every event to its centre.
* ``ParticleTransformer`` -- ParT (Qu, Li, Qian, ICML 2022, arXiv:2202.03772):
  per-object embedding MLP, self-attention blocks over the object set,
  optionally biased per head by a pointwise MLP of the pairwise features
  ln m²_ij and ln ΔR_ij ("ParT + SM couplings" of the poster), class-attention
  blocks with a class token, then the event features appended and an FC stack.
  ``PART_PRESETS["poster"]`` is the poster's size, ``"cpu"`` a small default.

``pair_features`` computes ln m²_ij and ln ΔR_ij from log E, log pT, eta, phi.
Importing this module loads torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from objectives.errors import DataError
from objectives.unsupervised.arrays import N_KINEMATICS

__all__ = [
    "PART_PRESETS",
    "MLPBackbone",
    "ParTConfig",
    "ParticleTransformer",
    "init_parameters",
    "make_backbone",
    "pair_features",
]

_M2_FLOOR = 1e-4  # GeV², floor of m²_ij before the log
_DR2_FLOOR = 1e-6  # floor of ΔR²_ij before the log


@dataclass(frozen=True)
class ParTConfig:
    """Sizes of a Particle Transformer (embed / pair / FC dims are per-layer widths)."""

    embed_dims: tuple[int, ...] = (64, 64)
    pair_embed_dims: tuple[int, ...] = (32, 32)
    num_heads: int = 4
    num_layers: int = 2
    num_cls_layers: int = 1
    fc_dims: tuple[int, ...] = (64,)


#: "cpu": a small default for CPU runs; "poster": the poster's full size (seed 002).
PART_PRESETS: dict[str, ParTConfig] = {
    "cpu": ParTConfig(),
    "poster": ParTConfig(
        embed_dims=(128, 512, 128),
        pair_embed_dims=(64, 64, 64),
        num_heads=8,
        num_layers=8,
        num_cls_layers=2,
        fc_dims=(64, 256, 64),
    ),
}


def pair_features(kin: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(n, P, P, 2)``: ln m²_ij [GeV²] and ln ΔR_ij of every pair of real objects.

    ``kin`` is ``(n, P, 4)`` in raw units (log E/GeV, log pT/GeV, eta, phi);
    the four-vectors are E, pT cos phi, pT sin phi, pT sinh eta. Entries of
    padded pairs and of the diagonal are 0. m² and ΔR² are floored at
    1e-4 GeV² and 1e-6 before the log (no sqrt: finite gradients everywhere).
    """
    kin = torch.where(mask[..., None], kin, torch.zeros_like(kin))
    log_e, log_pt, eta, phi = kin.unbind(-1)
    e, pt = torch.exp(log_e), torch.exp(log_pt)
    p4 = torch.stack([e, pt * torch.cos(phi), pt * torch.sin(phi), pt * torch.sinh(eta)], -1)
    s = p4[:, :, None, :] + p4[:, None, :, :]
    m2 = s[..., 0] ** 2 - (s[..., 1:] ** 2).sum(-1)
    deta = eta[:, :, None] - eta[:, None, :]
    dphi = torch.remainder(phi[:, :, None] - phi[:, None, :] + math.pi, 2 * math.pi) - math.pi
    feats = torch.stack(
        [
            torch.log(m2.clamp_min(_M2_FLOOR)),
            0.5 * torch.log((deta**2 + dphi**2).clamp_min(_DR2_FLOOR)),
        ],
        dim=-1,
    )
    off_diagonal = ~torch.eye(mask.shape[1], dtype=torch.bool, device=mask.device)
    valid = mask[:, :, None] & mask[:, None, :] & off_diagonal
    return torch.where(valid[..., None], feats, torch.zeros_like(feats))


class MLPBackbone(nn.Module):
    """The poster's MLP: ``[Dense(w) relu, BatchNorm]`` per width of ``layers`` (default 16, 8).

    Input: the ``P * F`` masked object features flattened, then the ``E``
    event features. ``bias=False``: no bias terms and no BatchNorm (``[Dense(w,
    bias=False) relu]`` per width: a positively homogeneous network, which cannot
    output a non-zero constant on inputs with none). Arrays with fewer slots than
    ``max_objects`` are padded; more slots are accepted only when the extra ones are
    all padding.
    """

    def __init__(
        self,
        max_objects: int,
        n_features: int,
        n_event: int,
        *,
        layers: Sequence[int] = (16, 8),
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.max_objects = max_objects
        mods: list[nn.Module] = []
        width = max_objects * n_features + n_event
        for n_out in layers:
            mods += [nn.Linear(width, n_out, bias=bias), nn.ReLU()]
            if bias:
                mods.append(nn.BatchNorm1d(n_out))
            width = n_out
        self.net = nn.Sequential(*mods)
        self.out_dim = width

    def forward(
        self, objects: torch.Tensor, mask: torch.Tensor, event: torch.Tensor
    ) -> torch.Tensor:
        p = objects.shape[1]
        if p < self.max_objects:
            objects = F.pad(objects, (0, 0, 0, self.max_objects - p))
            mask = F.pad(mask, (0, self.max_objects - p))
        elif p > self.max_objects:
            if mask[:, self.max_objects :].any():
                raise DataError(
                    f"MLP backbone was built for {self.max_objects} objects per event, "
                    "got events with more real objects (read them with that max_objects)"
                )
            objects, mask = objects[:, : self.max_objects], mask[:, : self.max_objects]
        x = (objects * mask[..., None]).flatten(1)
        return self.net(torch.cat([x, event], dim=1))


class _Attention(nn.Module):
    """Multi-head attention with an additive float mask / bias ``(n, H or 1, Lq, Lk)``."""

    def __init__(self, dim: int, heads: int, bias: bool) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"ParT: embedding width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=bias)
        self.k = nn.Linear(dim, dim, bias=bias)
        self.v = nn.Linear(dim, dim, bias=bias)
        self.out = nn.Linear(dim, dim, bias=bias)

    def forward(self, q: torch.Tensor, kv: torch.Tensor, attn_bias: torch.Tensor) -> torch.Tensor:
        n, lq, c = q.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(n, -1, h, c // h).transpose(1, 2)

        o = F.scaled_dot_product_attention(
            split(self.q(q)), split(self.k(kv)), split(self.v(kv)), attn_mask=attn_bias
        )
        return self.out(o.transpose(1, 2).reshape(n, lq, c))


class _Block(nn.Module):
    """ParT block: LN, attention, LN, residual; LN, Linear 4x, GELU, LN, Linear, residual."""

    def __init__(self, dim: int, heads: int, bias: bool) -> None:
        super().__init__()
        self.pre_attn = nn.LayerNorm(dim, bias=bias)
        self.attn = _Attention(dim, heads, bias)
        self.post_attn = nn.LayerNorm(dim, bias=bias)
        self.pre_fc = nn.LayerNorm(dim, bias=bias)
        self.fc1 = nn.Linear(dim, 4 * dim, bias=bias)
        self.post_fc = nn.LayerNorm(4 * dim, bias=bias)
        self.fc2 = nn.Linear(4 * dim, dim, bias=bias)

    def forward(self, x: torch.Tensor, kv: torch.Tensor | None, attn_bias: torch.Tensor):
        """Self-attention when ``kv`` is None, else ``x`` (class token) attends to ``kv``."""
        q = self.pre_attn(x)
        kv = q if kv is None else self.pre_attn(kv)
        x = x + self.post_attn(self.attn(q, kv, attn_bias))
        return x + self.fc2(self.post_fc(F.gelu(self.fc1(self.pre_fc(x)))))


class ParticleTransformer(nn.Module):
    """Particle Transformer (Qu, Li, Qian 2022) over the masked object set, plus event features.

    ``pair=True`` adds ln m²_ij and ln ΔR_ij (standardised with
    ``pair_mean``/``pair_std``) as per-head attention biases through a
    pointwise MLP. The kinematics are recovered from the standardised inputs
    with ``kin_mean``/``kin_std`` so that gradients with respect to the
    inputs (DROCC) flow through the pair features too. ``bias=False``: no
    bias terms anywhere and a fixed zero class token (Deep SVDD).
    """

    def __init__(
        self,
        n_features: int,
        n_event: int,
        *,
        config: ParTConfig = PART_PRESETS["cpu"],
        pair: bool = False,
        bias: bool = True,
        kin_mean: Sequence[float] = (0.0,) * N_KINEMATICS,
        kin_std: Sequence[float] = (1.0,) * N_KINEMATICS,
        pair_mean: Sequence[float] = (0.0, 0.0),
        pair_std: Sequence[float] = (1.0, 1.0),
    ) -> None:
        super().__init__()
        self.config, self.pair, self.bias = config, pair, bias
        self._stats = {
            "kin_mean": tuple(kin_mean),
            "kin_std": tuple(kin_std),
            "pair_mean": tuple(pair_mean),
            "pair_std": tuple(pair_std),
        }
        for name, values in self._stats.items():
            self.register_buffer(name, torch.tensor(values, dtype=torch.float32))
        embed: list[nn.Module] = []
        width = n_features
        for d in config.embed_dims:
            embed += [nn.LayerNorm(width, bias=bias), nn.Linear(width, d, bias=bias), nn.GELU()]
            width = d
        self.embed = nn.Sequential(*embed)
        dim = width
        if pair:
            mods: list[nn.Module] = []
            w = 2
            for d in config.pair_embed_dims:
                mods += [nn.Linear(w, d, bias=bias), nn.GELU()]
                w = d
            mods.append(nn.Linear(w, config.num_heads, bias=bias))
            self.pair_embed = nn.Sequential(*mods)
        self.blocks = nn.ModuleList(
            _Block(dim, config.num_heads, bias) for _ in range(config.num_layers)
        )
        self.cls_blocks = nn.ModuleList(
            _Block(dim, config.num_heads, bias) for _ in range(config.num_cls_layers)
        )
        if bias:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        else:
            self.register_buffer("cls_token", torch.zeros(1, 1, dim))
        self.norm = nn.LayerNorm(dim, bias=bias)
        fc: list[nn.Module] = []
        width = dim + n_event
        for d in config.fc_dims:
            fc += [nn.Linear(width, d, bias=bias), nn.ReLU()]
            width = d
        self.fc = nn.Sequential(*fc)
        self.out_dim = width

    def reset_with(self, generator: torch.Generator) -> None:
        """Fill buffers and class token after ``to_empty`` (called by ``init_parameters``)."""
        with torch.no_grad():
            for name, values in self._stats.items():
                getattr(self, name).copy_(torch.tensor(values, dtype=torch.float32))
            if self.bias:
                nn.init.trunc_normal_(self.cls_token, std=0.02, generator=generator)
            else:
                self.cls_token.zero_()

    def forward(
        self, objects: torch.Tensor, mask: torch.Tensor, event: torch.Tensor
    ) -> torch.Tensor:
        n, p, _ = objects.shape
        m = mask[..., None].to(objects.dtype)
        objects = objects * m
        x = self.embed(objects) * m
        # a real query sees every real key; a padded query only itself (no empty rows)
        allowed = mask[:, None, None, :] | torch.eye(p, dtype=torch.bool, device=mask.device)
        attn_bias = x.new_zeros(allowed.shape).masked_fill(~allowed, -math.inf)
        if self.pair:
            kin = objects[..., -N_KINEMATICS:] * self.kin_std + self.kin_mean
            pf = (pair_features(kin, mask) - self.pair_mean) / self.pair_std
            valid = mask[:, :, None] & mask[:, None, :]
            pf = pf * valid[..., None]
            attn_bias = attn_bias + self.pair_embed(pf).permute(0, 3, 1, 2)
        for block in self.blocks:
            x = block(x, None, attn_bias) * m
        cls = self.cls_token.expand(n, 1, -1)
        keys = torch.cat([mask.new_ones(n, 1), mask], dim=1)
        cls_bias = x.new_zeros(n, 1, 1, p + 1).masked_fill(~keys[:, None, None, :], -math.inf)
        for block in self.cls_blocks:
            cls = block(cls, torch.cat([cls, x], dim=1), cls_bias)
        h = torch.cat([self.norm(cls[:, 0]), event], dim=1)
        return self.fc(h)


def make_backbone(
    name: str,
    *,
    max_objects: int,
    n_features: int,
    n_event: int,
    bias: bool = True,
    mlp_layers: Sequence[int] = (16, 8),
    part_preset: str = "cpu",
    kin_mean: Sequence[float] = (0.0,) * N_KINEMATICS,
    kin_std: Sequence[float] = (1.0,) * N_KINEMATICS,
    pair_mean: Sequence[float] = (0.0, 0.0),
    pair_std: Sequence[float] = (1.0, 1.0),
) -> nn.Module:
    """Backbone ``name`` ("MLP", "ParT", "ParT+pair"), uninitialised (see ``init_parameters``)."""
    if name == "MLP":
        return MLPBackbone(max_objects, n_features, n_event, layers=mlp_layers, bias=bias)
    if name in ("ParT", "ParT+pair"):
        return ParticleTransformer(
            n_features,
            n_event,
            config=PART_PRESETS[part_preset],
            pair=name == "ParT+pair",
            bias=bias,
            kin_mean=kin_mean,
            kin_std=kin_std,
            pair_mean=pair_mean,
            pair_std=pair_std,
        )
    raise ValueError(f"unknown backbone {name!r}; valid backbones are MLP, ParT, ParT+pair")


def init_parameters(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Initialise every parameter and buffer of ``module`` from ``generator`` (in place).

    Linear layers get torch's default scheme (Kaiming uniform, a = sqrt(5);
    bias uniform in ±1/sqrt(fan_in)) drawn from ``generator``; norms are
    reset; modules with a ``reset_with(generator)`` method fill their own.
    The global torch RNG is neither read nor changed. Unknown modules with
    parameters raise ``TypeError`` rather than stay uninitialised.
    """
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                if m.bias is not None:
                    bound = 1.0 / math.sqrt(m.in_features)
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            elif isinstance(m, nn.LayerNorm | nn.BatchNorm1d):
                m.reset_parameters()
            elif hasattr(m, "reset_with"):
                m.reset_with(generator)
            elif any(True for _ in m.parameters(recurse=False)):
                raise TypeError(f"init_parameters: no initialisation for {type(m).__name__}")
    return module
