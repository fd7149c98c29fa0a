"""lucid.optim: optimizers, learning-rate schedules and weight averaging, with torch.optim's API.

    from lucid import optim
    opt = optim.AdamW(optim.param_groups_weight_decay(model, 0.05), lr=1e-3)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    ema = optim.swa_utils.AveragedModel(model, decay=0.9998)
    for batch in data:
        loss = ...; opt.zero_grad(); loss.backward(); opt.step(); sched.step(); ema.update_parameters(model)

SGD, Adam and AdamW follow torch's single-tensor formulas operation by operation, so a lucid run and a
torch run from the same weights and gradients agree to float32 rounding (tests/optim check every step).
"""
from .optimizer import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW
from .param_groups import param_groups_weight_decay
from . import lr_scheduler, swa_utils

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "param_groups_weight_decay", "lr_scheduler", "swa_utils"]
