"""Random numbers (lucid/random.py): seeding, generators, state round trips, dtypes, bounds and moments."""
import json

import numpy as np
import pytest

import lucid
from lucid import random as lr


@pytest.fixture(autouse=True)
def _restore_default_rng():
    """Tests reseed the default generator; put its state back so other tests see no difference."""
    state = lr.get_rng_state()
    yield
    lr.set_rng_state(state)


SAMPLERS = {
    "rand": lambda g=None: lucid.rand(3, 4, generator=g),
    "randn": lambda g=None: lucid.randn(3, 4, generator=g),
    "randint": lambda g=None: lucid.randint(0, 100, (3, 4), generator=g),
    "normal": lambda g=None: lr.normal(1.0, 2.0, (3, 4), generator=g),
    "uniform": lambda g=None: lr.uniform(-1.0, 1.0, (3, 4), generator=g),
    "permutation": lambda g=None: lr.permutation(12, generator=g),
    "randperm": lambda g=None: lucid.randperm(12, generator=g),
    "bernoulli": lambda g=None: lr.bernoulli(0.5, (3, 4), generator=g),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_manual_seed_is_deterministic(name):
    lucid.manual_seed(123)
    a = SAMPLERS[name]().numpy()
    b = SAMPLERS[name]().numpy()
    lucid.manual_seed(123)
    np.testing.assert_array_equal(SAMPLERS[name]().numpy(), a)
    np.testing.assert_array_equal(SAMPLERS[name]().numpy(), b)
    assert not np.array_equal(a, b)  # consecutive draws differ
    lucid.manual_seed(124)
    assert not np.array_equal(SAMPLERS[name]().numpy(), a)


def test_manual_seed_returns_generator_and_sets_initial_seed():
    g = lucid.manual_seed(7)
    assert isinstance(g, lr.Generator) and g is lr.default_generator
    assert lr.initial_seed() == 7
    with pytest.raises(TypeError, match="int"):
        lucid.manual_seed(1.5)
    with pytest.raises(TypeError, match="int"):
        lucid.manual_seed(True)
    lucid.manual_seed(np.int64(3))  # NumPy ints are fine
    s = lucid.seed()
    assert isinstance(s, int) and lr.initial_seed() == s


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_generators_are_independent(name):
    g1, g2 = lr.Generator(5), lr.Generator(5)
    lucid.manual_seed(0)
    first = SAMPLERS[name](g1).numpy()
    default_before = lr.get_rng_state()
    SAMPLERS[name](g1)  # advancing g1 ...
    assert lr.get_rng_state() == default_before  # ... leaves the default generator alone
    np.testing.assert_array_equal(SAMPLERS[name](g2).numpy(), first)  # ... and g2
    g3 = lr.Generator().manual_seed(5)
    np.testing.assert_array_equal(SAMPLERS[name](g3).numpy(), first)


def test_rng_state_round_trip_through_json():
    lucid.manual_seed(42)
    lucid.randn(10)
    state = lr.get_rng_state()
    text = json.dumps(state)  # checkpoints store it as JSON
    expected = [lucid.randn(5).numpy(), lucid.randint(0, 9, (4,)).numpy(), lucid.rand(3).numpy()]
    lucid.manual_seed(999)
    lucid.randn(100)
    lr.set_rng_state(json.loads(text))
    got = [lucid.randn(5).numpy(), lucid.randint(0, 9, (4,)).numpy(), lucid.rand(3).numpy()]
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(e, g)
    assert lr.initial_seed() == 42


def test_generator_state_round_trip_and_bad_state():
    g = lr.Generator(3)
    g.rng.random(7)
    st = json.loads(json.dumps(g.get_state()))
    a = lucid.rand(4, generator=g).numpy()
    h = lr.Generator(0)
    h.set_state(st)
    np.testing.assert_array_equal(lucid.rand(4, generator=h).numpy(), a)
    with pytest.raises(ValueError, match="get_state"):
        lr.set_rng_state({"nope": 1})
    with pytest.raises(ValueError, match="get_state"):
        lr.set_rng_state([1, 2])


@pytest.mark.parametrize("name", ["rand", "randn", "normal", "uniform", "bernoulli"])
def test_float_samplers_give_float32(name):
    assert SAMPLERS[name]().dtype == lucid.float32


def test_dtype_device_requires_grad_arguments():
    assert lucid.randn(2, dtype=lucid.float64).dtype == lucid.float64
    assert lucid.rand(2, dtype="float16").dtype == lucid.float16
    x = lucid.randn(2, 3, requires_grad=True)
    assert x.requires_grad and x.is_leaf
    assert lucid.randn(2, device="cpu").device == "cpu"
    assert lucid.randn((2, 3)).shape == (2, 3) and lucid.rand([4]).shape == (4,)
    assert lucid.randn().shape == ()


def test_randn_image_batch_shape():
    x = lucid.random.randn(1, 3, 224, 224)
    assert x.shape == (1, 3, 224, 224) and x.dtype == lucid.float32


def test_randint_bounds_and_dtype():
    lucid.manual_seed(0)
    x = lucid.randint(3, 7, (2000,))
    assert x.dtype == lucid.int64 and x.shape == (2000,)
    v = x.numpy()
    assert v.min() == 3 and v.max() == 6  # high is exclusive, every value reached
    y = lucid.randint(5, size=(3, 4))
    assert y.shape == (3, 4) and 0 <= y.numpy().min() and y.numpy().max() < 5
    assert lucid.randint(-2, 2, (10,), dtype=lucid.int32).dtype == lucid.int32
    assert lucid.randint(0, 2, 5).shape == (5,)
    assert lucid.randint(0, 2).shape == ()
    with pytest.raises(ValueError, match=r"high \(3\).*low \(3\)"):
        lucid.randint(3, 3, (2,))


def test_randint_torch_style_high_size():
    """torch.randint(high, size): a tuple as the second argument is the size."""
    x = lucid.randint(10, (4, 2))
    assert x.shape == (4, 2) and x.numpy().min() >= 0 and x.numpy().max() < 10
    assert lucid.randint(3, 10, size=(5,)).numpy().min() >= 3


def test_permutation():
    lucid.manual_seed(1)
    p = lr.permutation(50)
    assert p.dtype == lucid.int64 and sorted(p.tolist()) == list(range(50))
    assert p.tolist() != list(range(50))
    assert lucid.randperm(0).shape == (0,)
    assert lucid.randperm(1).tolist() == [0]


def test_bernoulli():
    lucid.manual_seed(2)
    x = lr.bernoulli(0.3, size=(20000,))
    assert x.dtype == lucid.float32 and set(np.unique(x.numpy())) <= {0.0, 1.0}
    assert abs(x.numpy().mean() - 0.3) < 0.015
    probs = lucid.tensor([[0.0, 1.0, 0.5]] * 4000)
    y = lr.bernoulli(probs).numpy()
    assert y.shape == (4000, 3)
    assert y[:, 0].sum() == 0 and y[:, 1].sum() == 4000 and abs(y[:, 2].mean() - 0.5) < 0.03
    assert lr.bernoulli(0.0, size=3).numpy().sum() == 0 and lr.bernoulli(1.0, size=3).numpy().sum() == 3


def test_normal_and_uniform_moments():
    lucid.manual_seed(3)
    n = lr.normal(2.0, 3.0, (200000,)).numpy()
    assert abs(n.mean() - 2.0) < 0.03 and abs(n.std() - 3.0) < 0.03
    z = lucid.randn(200000).numpy()
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    u = lr.uniform(-2.0, 4.0, (200000,)).numpy()
    assert u.min() >= -2.0 and u.max() < 4.0
    assert abs(u.mean() - 1.0) < 0.02 and abs(u.var() - 36 / 12) < 0.03
    r = lucid.rand(200000).numpy()
    assert r.min() >= 0.0 and r.max() < 1.0 and abs(r.mean() - 0.5) < 0.005
    with pytest.raises(ValueError, match="std"):
        lr.normal(0.0, -1.0, (2,))
    with pytest.raises(ValueError, match="high"):
        lr.uniform(1.0, 0.0, (2,))
