"""Module.structure_epoch and lucid.nn.derived.DerivedValue: cached values derived from modules go stale
exactly when the modules or their source tensors change."""
import numpy as np

import lucid
from lucid import nn
from lucid.nn.derived import DerivedValue


def _epoch_moves(change) -> bool:
    before = nn.Module.structure_epoch
    change()
    return nn.Module.structure_epoch != before


def test_structure_epoch_moves_on_every_change_through_the_module_api():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    conv = model[0]
    handles = []
    changes = {
        "attribute": lambda: setattr(conv, "padding", (1, 1)),
        "new parameter": lambda: setattr(conv, "extra", nn.Parameter(np.zeros(2, np.float32))),
        "delete": lambda: delattr(conv, "extra"),
        "buffer": lambda: conv.register_buffer("stat", lucid.zeros(2)),
        "submodule": lambda: model.append(nn.Identity()),
        "hook": lambda: handles.append(conv.register_forward_hook(lambda *a: None)),
        "hook removed": lambda: handles[0].remove(),
        "pre-hook": lambda: conv.register_forward_pre_hook(lambda *a: None),
        "eval": model.eval,
        "train": model.train,
    }
    for name, change in changes.items():
        assert _epoch_moves(change), name
    model.eval()
    assert not _epoch_moves(model.eval)  # already in eval mode: nothing changed
    assert not _epoch_moves(lambda: handles[0].remove())  # removed twice: nothing changed


def test_inference_forward_changes_no_structure():
    """An eval forward sets no module attribute, so cached inference plans survive it (else every forward
    would rebuild them)."""
    model = lucid.models.create_model("inception_next_atto", num_classes=10).eval()
    x = lucid.randn(2, 3, 32, 32)
    with lucid.no_grad():
        model(x)
        assert not _epoch_moves(lambda: model(x))
    model.train()
    assert not _epoch_moves(lambda: model(x))  # nor does a training forward


def test_derived_value_rebuilds_when_a_source_or_the_structure_changes():
    lin = nn.Linear(3, 2)
    builds = []

    def build():
        builds.append(1)
        return lin.weight.array.sum() + lin.bias.array.sum(), (lin.weight, lin.bias)

    cache = DerivedValue()
    first = cache.get(build)
    assert cache.get(build) == first and len(builds) == 1  # nothing changed: no rebuild
    with lucid.no_grad():
        lin.weight.add_(1.0)  # in place through lucid: version bump
    assert cache.get(build) == first + 6 and len(builds) == 2
    lin.bias.array = lin.bias.array + 1  # a new array under the same tensor
    assert cache.get(build) == first + 8 and len(builds) == 3
    lin.in_features = 3  # any module change
    cache.get(build)
    assert len(builds) == 4
    cache.clear()
    assert cache.cached is None
    cache.get(build)
    assert len(builds) == 5
