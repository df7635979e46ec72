"""``no_decay``: which parameters get weight decay 0 (biases / 1-D, norms, embeddings)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["NoDecay"]

_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm*
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
#: Class names of third-party norms: LayerNorm2d, FrozenBatchNorm2d, LlamaRMSNorm, ...
_NORM_NAME = re.compile(r"Norm(\d+d)?$")
_EMBEDDING_TYPES = (nn.Embedding, nn.EmbeddingBag)
#: timm / HF token and position tables (raw ``nn.Parameter``s, not ``nn.Embedding``).
_EMBEDDING_SUFFIXES = (
    "pos_embed",
    "cls_token",
    "dist_token",
    "reg_token",
    "mask_token",
    "position_embeddings",
    "token_type_embeddings",
    "relative_position_bias_table",
    "pos_emb",
    "pos_embedding",
    "positional_embedding",  # OpenAI CLIP
    "class_embedding",  # OpenAI CLIP
)
#: Whole parameter names (the last dotted part) of hand-written position tables.
_EMBEDDING_NAMES = frozenset({"pos", "pos_enc", "pos_encoding"})


class NoDecay:
    """Which parameters ``no_decay`` exempts from weight decay (caches per module type).

    Example:
        >>> skip = NoDecay(["bias"])
        >>> skip("fc.bias", torch.zeros(3), nn.Linear(1, 3))
        True

    """

    def __init__(self, kinds: Sequence[str]) -> None:
        self.bias = "bias" in kinds
        self.norm = "norm" in kinds
        self.embedding = "embedding" in kinds
        self._type_cache: dict[type, bool] = {}

    def __call__(self, name: str, p: torch.Tensor, owner: nn.Module) -> bool:
        """Whether parameter ``name`` (registered on ``owner``) gets weight decay 0."""
        if self.bias and (p.ndim <= 1 or name.endswith("bias")):
            return True
        if self.embedding and (
            name.endswith(_EMBEDDING_SUFFIXES) or name.rpartition(".")[2] in _EMBEDDING_NAMES
        ):
            return True
        if self.norm or self.embedding:
            cls = type(owner)
            hit = self._type_cache.get(cls)
            if hit is None:
                hit = self._type_cache[cls] = (
                    self.norm
                    and (
                        issubclass(cls, _NORM_TYPES) or _NORM_NAME.search(cls.__name__) is not None
                    )
                ) or (self.embedding and issubclass(cls, _EMBEDDING_TYPES))
            return hit
        return False
