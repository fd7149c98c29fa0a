"""Test-session settings shared by every test module."""
import os

# `make test` runs two pytest-xdist workers on a 2-core machine: one BLAS/OpenMP/numba thread per worker
# avoids oversubscription, where spin-waiting threads of one worker stall the other's kernels. (The thread
# counts only; OPENBLAS_CORETYPE and the rest of the environment are left as they are.)
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

# the `gpu` and `device` fixtures: lucid's device="gpu" on the strict CuPy stand-in (tests/_fake_cupy), or on
# real CuPy where a GPU is present
pytest_plugins = ["tests._fake_cupy.plugin"]


def pytest_configure(config):
    # @pytest.mark.torch_api("torch.nn.LSTM", "torch.Tensor.lstm", differs="why, if lucid differs"): the test
    # checks lucid's version of these PyTorch APIs against torch. docs/torch_compat.md is generated from these
    # marks and the tests' outcomes (scripts/torch_compat.py), never written by hand.
    config.addinivalue_line("markers", "torch_api(*names, differs=None): the PyTorch APIs this test checks lucid "
                                       "against; feeds the generated compatibility table")
