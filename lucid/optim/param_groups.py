"""``param_groups_weight_decay``: the usual two param groups, weight decay only where it belongs (timm's)."""
from __future__ import annotations

import fnmatch


def param_groups_weight_decay(model, weight_decay: float = 1e-5, no_weight_decay_list=(), *,
                              weight_decay_exclude_1d: bool = True) -> list[dict]:
    """Split ``model``'s trainable parameters into a no-decay group and a decay group, as timm's
    ``timm.optim.param_groups_weight_decay``::

        opt = lucid.optim.AdamW(param_groups_weight_decay(model, 0.05), lr=1e-3)

    A parameter gets ``weight_decay=0.0`` when it has ndim <= 1 (biases, norm weights, InceptionNeXt's
    layer-scale ``gamma``) or a name ending in ``.bias`` (unless ``weight_decay_exclude_1d=False``), or when
    its name matches an entry of ``no_weight_decay_list`` (exact names or fnmatch patterns such as
    ``"*.pos_embed"``). Parameters with ``requires_grad=False`` are left out. With ``weight_decay`` 0 or
    None everything goes to the no-decay group.

    Returns: ``[{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]``
    in that order, leaving out an empty group (timm does the same).
    """
    if isinstance(no_weight_decay_list, str):
        no_weight_decay_list = (no_weight_decay_list,)
    patterns = tuple(no_weight_decay_list)
    no_wd = not weight_decay
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if no_wd:
            no_decay.append(param)
            continue
        excluded_1d = weight_decay_exclude_1d and (param.ndim <= 1 or name.endswith(".bias"))
        if excluded_1d or any(fnmatch.fnmatch(name, pat) for pat in patterns):
            no_decay.append(param)
        else:
            decay.append(param)
    groups = []
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    if decay:
        groups.append({"params": decay, "weight_decay": weight_decay})
    return groups
