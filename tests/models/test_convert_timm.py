"""scripts/convert_timm.py turns timm weights (safetensors or a torch state dict) into lucid weights."""
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

import lucid
from lucid.models import create_model

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "convert_timm.py"


@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_converted_weights_give_timm_logits(tmp_path, fmt):
    torch.manual_seed(0)
    tmodel = timm.create_model("inception_next_atto", num_classes=10).eval()
    with torch.no_grad():
        for n, p in tmodel.named_parameters():
            if n.endswith("gamma"):
                p.fill_(0.7)
    src = tmp_path / f"timm.{fmt}"
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in tmodel.state_dict().items()}, str(src))
    else:
        torch.save({"state_dict": {"module." + k: v for k, v in tmodel.state_dict().items()}}, str(src))
    dst = tmp_path / "lucid.safetensors"
    out = subprocess.run([sys.executable, str(SCRIPT), str(src), str(dst), "--model", "inception_next_atto"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    model = create_model("inception_next_atto", num_classes=10, pretrained_path=str(dst)).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    with lucid.no_grad():
        got = model(lucid.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_wrong_model_is_a_clear_error(tmp_path):
    tmodel = timm.create_model("inception_next_atto")
    src = tmp_path / "timm.safetensors"
    save_file({k: v.contiguous() for k, v in tmodel.state_dict().items()}, str(src))
    out = subprocess.run([sys.executable, str(SCRIPT), str(src), str(tmp_path / "x.safetensors"), "--model",
                          "inception_next_tiny"], capture_output=True, text=True)
    assert out.returncode != 0
    assert "error:" in out.stderr and "shape" in out.stderr
    assert not (tmp_path / "x.safetensors").exists()
