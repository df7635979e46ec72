"""Param groups from rules: names -> rules -> layer ids -> named, merged groups.

The flow is data in, data out:

1. every parameter of the model is listed once (shared / tied parameters count once,
   detectron2's ``memo``) with its normalised name and the module that registers it;
2. the ordered rules of ``optim.groups`` are matched, first match wins;
3. each trainable parameter gets its hyperparameters (rule, ``no_decay``, layer decay);
4. groups whose hyperparameters and schedule are identical are merged (detectron2's
   ``reduce_param_groups``), so multi-tensor optimizer steps see as few groups as possible.

Modules: :mod:`.names` (normalised names, each tensor once), :mod:`.rules` (compiling and
matching rules: the one matching path), :mod:`.decay` (``no_decay``), :mod:`.layers` and
:mod:`.matcher` (layer ids: ``layers`` regex, timm's ``group_matcher``, name schemes),
:mod:`.merge` (merging identical groups), :mod:`.build` (the pipeline).

Matching semantics:

* ``params`` entries are fnmatch globs matched against the *whole* normalised name
  (``head.*`` matches ``head.weight``; ``*`` also crosses dots), case-sensitively.
* ``"re:<regex>"`` entries are searched anywhere in the name (:func:`re.search`), like
  ``grep``; anchor with ``^`` / ``$`` when you need to.
* ``modules`` entries match the parameters registered directly on modules of that type
  (``isinstance``): ``torch.nn.LayerNorm``, a short ``torch.nn`` name (``LayerNorm``), or
  any importable ``nn.Module`` subclass.

Example:
    >>> import torch
    >>> from lit_optim.core.config import OptimConfig
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2))
    >>> cfg = OptimConfig(optimizer="torch.optim.AdamW",
    ...                   groups=[{"name": "norms", "modules": ["LayerNorm"], "lr_scale": 0.1,
    ...                            "weight_decay": 0.0}])
    >>> pg = build_param_groups(model, cfg, {"lr": 1.0, "weight_decay": 0.01})
    >>> [(g["name"], g["lr"], g["weight_decay"], len(g["params"])) for g in pg.groups]
    [('default', 1.0, 0.01, 1), ('default/no_decay', 1.0, 0.0, 1), ('norms', 0.1, 0.0, 2)]

"""

from __future__ import annotations

from lit_optim.core.groups.build import build_param_groups
from lit_optim.core.groups.names import normalize_name
from lit_optim.core.groups.result import ParamGroups, ParamInfo

__all__ = ["ParamGroups", "ParamInfo", "build_param_groups", "normalize_name"]
