"""Per-module structure versions and lucid.nn.derived.DerivedValue: a cached value derived from some modules
goes stale exactly when one of *those* modules or source tensors changes, never because of another module."""
import numpy as np

import lucid
from lucid import nn
from lucid.nn.derived import DerivedValue


def _moves(module, change) -> bool:
    before = module._structure_version
    change()
    return module._structure_version != before


def test_structure_version_moves_on_every_change_through_the_module_api():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    conv = model[0]
    handles = []
    changes = {
        "attribute": (conv, lambda: setattr(conv, "padding", (1, 1))),
        "new parameter": (conv, lambda: setattr(conv, "extra", nn.Parameter(np.zeros(2, np.float32)))),
        "delete": (conv, lambda: delattr(conv, "extra")),
        "buffer": (conv, lambda: conv.register_buffer("stat", lucid.zeros(2))),
        "submodule": (model, lambda: model.append(nn.Identity())),
        "hook": (conv, lambda: handles.append(conv.register_forward_hook(lambda *a: None))),
        "hook removed": (conv, lambda: handles[0].remove()),
        "pre-hook": (conv, lambda: conv.register_forward_pre_hook(lambda *a: None)),
        "eval": (conv, model.eval),
        "train": (conv, model.train),
    }
    for name, (module, change) in changes.items():
        assert _moves(module, change), name
    model.eval()
    assert not _moves(conv, model.eval)  # already in eval mode: nothing changed
    assert not _moves(conv, lambda: handles[0].remove())  # removed twice: nothing changed
    assert not _moves(model[1], lambda: setattr(conv, "padding", (0, 0)))  # a sibling's change is not ours


def test_forward_changes_no_structure():
    """Neither an inference nor a training forward of the fused model sets a module attribute (else every
    forward would rebuild the cached plans)."""
    model = nn.fuse(lucid.models.create_model("inception_next_atto", num_classes=10), inference=True).eval()
    x = lucid.randn(2, 3, 32, 32)
    versions = lambda: [m._structure_version for m in model.modules()]  # noqa: E731
    with lucid.no_grad():
        model(x)
        before = versions()
        model(x)
    assert versions() == before
    model.train()
    before = versions()
    model(x)
    assert versions() == before


def test_derived_value_rebuilds_when_a_source_changes():
    lin = nn.Linear(3, 2)
    other = nn.Linear(3, 2)
    builds = []

    def build():
        builds.append(1)
        return lin.weight.array.sum() + lin.bias.array.sum(), (lin, lin.weight, lin.bias)

    cache = DerivedValue()
    first = cache.get(build)
    assert cache.get(build) == first and len(builds) == 1  # nothing changed: no rebuild
    with lucid.no_grad():
        lin.weight.add_(1.0)  # in place through lucid: version bump
    assert cache.get(build) == first + 6 and len(builds) == 2
    lin.bias.array = lin.bias.array + 1  # a new array under the same tensor
    assert cache.get(build) == first + 8 and len(builds) == 3
    lin.bias.data.add_(1.0)  # torch-style change through .data: the owner's version moves
    assert cache.get(build) == first + 10 and len(builds) == 4
    other.in_features = 3  # another module's change: still valid
    cache.get(build)
    assert len(builds) == 4
    lin.in_features = 3  # a source module's change
    cache.get(build)
    assert len(builds) == 5
    cache.clear()
    assert cache.cached is None
    cache.get(build)
    assert len(builds) == 6


class _CountingForward(nn.Module):
    """A module that sets an attribute on itself in every forward (a common pattern: caching shapes)."""

    def forward(self, x):
        self.last_shape = tuple(x.shape)
        return x


def test_a_module_that_sets_attributes_in_forward_does_not_invalidate_other_folds(monkeypatch):
    """The issue's case: with one process-wide counter, one such module made all folds of an atto model
    rebuild on every call (2x slower batch-1 eval). Folds are now keyed on their own modules only."""
    from lucid.nn import fused

    model = nn.fuse(lucid.models.create_model("inception_next_atto", num_classes=10), inference=True).eval()
    model.stem.append(_CountingForward())  # the stem is no longer a (conv, bn) pair: it runs as modules
    model.head.global_pool = nn.Sequential(_CountingForward(), model.head.global_pool)
    folds = []
    original = fused.FusedMetaFormerBlock._build_fold

    def counting(self):
        folds.append(self)
        return original(self)

    monkeypatch.setattr(fused.FusedMetaFormerBlock, "_build_fold", counting)
    x = lucid.randn(1, 3, 32, 32)
    with lucid.no_grad():
        for _ in range(3):
            model(x)
    blocks = sum(isinstance(m, fused.FusedMetaFormerBlock) for m in model.modules())
    assert blocks == 12 and len(folds) == blocks  # built once each, not once per call
