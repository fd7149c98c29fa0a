"""create_model: keyword arguments override a registered variant's architecture (as timm's do), and a
misspelled argument is a one-line error naming the known ones."""
import numpy as np
import pytest
import torch

import lucid
from lucid.models import create_model

from .test_inception_next import _input, _pair


@pytest.mark.parametrize("name", ["inception_next_tiny", "inception_next_atto"])
def test_keyword_arguments_override_the_variant_like_timm(name):
    """Raised TypeError ("_build() got multiple values for argument 'depths'") before the models' rewrite."""
    tmodel, lmodel = _pair(name, depths=[1, 1, 2, 1], dims=[16, 32, 48, 64], num_classes=5)  # loads timm's weights
    assert sum(p.numel() for p in lmodel.parameters()) == sum(p.numel() for p in tmodel.parameters())
    lmodel.eval()
    tmodel.eval()
    x = _input((2, 3, 32, 32))
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    with lucid.no_grad():
        got = lmodel(lucid.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_misspelled_argument_names_the_known_ones():
    with pytest.raises(TypeError, match=r"create_model\('inception_next_tiny'\): unknown argument 'depth'\. "
                                        r"Did you mean 'depths'\? inception_next_tiny takes: .*dims"):
        create_model("inception_next_tiny", depth=[1, 1, 1, 1])
