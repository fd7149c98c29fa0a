"""Probe of the areas phase 2 of issue 17 owns, under the CuPy stand-in: the InceptionNeXt-atto train step
(fused and not, with drop-path), the fused ops, the trainer (fit, checkpoint/resume) and scripts/evaluate.py's
run_evaluation with TTA. Not a test: it runs each scenario, catches the first error, and prints it with the
implicit crossings, refused GPU-only kernels, syncs and uploads the stand-in logged.

    python -m tests.device.phase2_probe            # model step, fused ops, trainer fit
    python -m tests.device.phase2_probe eval       # run_evaluation, device=gpu, tta_hflip=true
    python -m tests.device.phase2_probe resume     # fit 1 epoch on gpu, then resume to 2
"""
import os
import sys
import tempfile
import traceback

import lucid
import lucid.nn as nn
from tests._fake_cupy import installed

def report(name, fn):
    """Run ``fn`` with the stand-in installed and print what happened."""
    with installed() as log:
        try:
            fn()
            status = "ok"
        except Exception as exc:
            tb = traceback.extract_tb(exc.__traceback__)
            where = next((f"{f.filename.replace(os.getcwd()+'/', '')}:{f.lineno} in {f.name}" for f in reversed(tb)
                          if "/lucid/" in f.filename or "/trainer/" in f.filename or "/scripts/" in f.filename), "?")
            status = f"FAIL {type(exc).__name__}: {str(exc)[:160]} (at {where})"
        kinds = {}
        for c in log.crossings:
            kinds.setdefault(str(c.kind) + " at " + c.where, 0)
            kinds[str(c.kind) + " at " + c.where] += 1
        print(f"== {name}: {status}")
        for k, n in kinds.items():
            print(f"   crossing x{n}: {k}")
        if log.refused:
            print(f"   refused kernels: {sorted(set(log.refused))}")
        print(f"   syncs: {len(log.syncs)}, uploads: {len(log.uploads)}")

def model_step(fuse, drop_path=0.1):
    def run():
        lucid.manual_seed(0)
        m = lucid.models.create_model("inception_next_atto", num_classes=10, drop_path_rate=drop_path)
        if fuse:
            m = nn.fuse(m, inference=True)
        m.to("gpu").train()
        opt = lucid.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.05)
        x = lucid.randn(4, 3, 32, 32, device="gpu"); y = lucid.tensor([1, 2, 3, 4], device="gpu")
        loss = nn.CrossEntropyLoss(label_smoothing=0.1)(m(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
        m.eval()
        with lucid.no_grad():
            m(x)
    return run

if len(sys.argv) == 1: report("InceptionNeXt-atto train step, unfused, drop_path 0.1", model_step(False))
if len(sys.argv) == 1: report("InceptionNeXt-atto train step, unfused, drop_path 0", model_step(False, 0.0))
if len(sys.argv) == 1: report("InceptionNeXt-atto train step, nn.fuse(inference=True), drop_path 0.1", model_step(True))
if len(sys.argv) == 1: report("InceptionNeXt-atto train step, nn.fuse(inference=True), drop_path 0", model_step(True, 0.0))

def fused_ops():
    from lucid.ops import fused as F
    x = lucid.randn(2, 8, 6, 6, device="gpu", requires_grad=True)
    w1, b1 = lucid.randn(32, 8, 1, 1, device="gpu", requires_grad=True), lucid.randn(32, device="gpu", requires_grad=True)
    w2, b2 = lucid.randn(8, 32, 1, 1, device="gpu", requires_grad=True), lucid.randn(8, device="gpu", requires_grad=True)
    y = F.conv_mlp_gelu(x, w1, b1, w2, b2)
    y.sum().backward()
def scaled_res():
    from lucid.ops import fused as F
    from lucid.ops.dropout import drop_path_scale
    y = lucid.randn(4, 8, 3, 3, device="gpu", requires_grad=True); s = lucid.randn(4, 8, 3, 3, device="gpu")
    g = lucid.randn(8, device="gpu", requires_grad=True)
    F.scaled_residual(y, g, s, drop_path_scale(4, 0.3, True, device="gpu")).sum().backward()
def scaled_res_host_keep():
    from lucid.ops import fused as F
    from lucid.ops.dropout import drop_path_scale
    y = lucid.randn(4, 8, 3, 3, device="gpu", requires_grad=True); s = lucid.randn(4, 8, 3, 3, device="gpu")
    g = lucid.randn(8, device="gpu", requires_grad=True)
    F.scaled_residual(y, g, s, drop_path_scale(4, 0.3, True)).sum().backward()
def branches():
    from lucid.ops import fused as F
    x = lucid.randn(2, 16, 6, 6, device="gpu", requires_grad=True)
    ws = [lucid.randn(4, 1, 3, 3, device="gpu", requires_grad=True), lucid.randn(4, 1, 1, 11, device="gpu", requires_grad=True),
          lucid.randn(4, 1, 11, 1, device="gpu", requires_grad=True)]
    bs = [lucid.randn(4, device="gpu", requires_grad=True) for _ in range(3)]
    F.depthwise_branches(x, ws, bs, 4).sum().backward()
if len(sys.argv) == 1: report("ops.fused.conv_mlp_gelu fwd+bwd", fused_ops)
if len(sys.argv) == 1: report("ops.fused.scaled_residual fwd+bwd, keep scale drawn on the device", scaled_res)
if len(sys.argv) == 1: report("ops.fused.scaled_residual fwd+bwd, keep scale from drop_path_scale() default (host)", scaled_res_host_keep)
if len(sys.argv) == 1: report("ops.fused.depthwise_branches fwd+bwd", branches)

def trainer_run(extra):
    def run():
        from hydra import compose, initialize_config_dir
        from trainer.engine import fit
        with initialize_config_dir(config_dir=os.path.abspath("conf"), version_base=None):
            cfg = compose("config", overrides=["device=gpu", "debug=fast", "trainer.progress=false",
                                                "trainer.image_grid=false"] + extra)
        with tempfile.TemporaryDirectory() as d:
            fit(cfg, d)
    return run
if len(sys.argv) == 1: report("trainer fit device=gpu debug=fast (fuse=true default, drop_path 0.1, label smoothing 0.1)", trainer_run([]))
if len(sys.argv) == 1: report("trainer fit device=gpu debug=fast fuse=false", trainer_run(["fuse=false"]))
if len(sys.argv) == 1: report("trainer fit device=gpu debug=fast grad_clip_norm=1 ema.enabled=true", trainer_run(["trainer.grad_clip_norm=1.0", "trainer.ema.enabled=true", "fuse=false"]))

def evaluate_tta(fuse):
    def run():
        from hydra import compose, initialize_config_dir
        from trainer.engine import fit
        from trainer.evaluation import run_evaluation
        with initialize_config_dir(config_dir=os.path.abspath("conf"), version_base=None):
            cfg = compose("config", overrides=["device=cpu", "debug=fast", "trainer.progress=false",
                                                "trainer.image_grid=false", "trainer.epochs=1", "fuse=false"])
        d = tempfile.mkdtemp()
        fit(cfg, d)
        ck = os.path.join(d, "checkpoints", "last.safetensors")
        with initialize_config_dir(config_dir=os.path.abspath("conf"), version_base=None):
            ecfg = compose("eval", overrides=[f"checkpoint={ck}", "device=gpu", "tta_hflip=true", "limit_batches=2",
                                               "progress=false", f"fuse={str(fuse).lower()}"])
        run_evaluation(ecfg, os.path.join(d, "eval"))
    return run
if __name__ == "__main__" and "eval" in sys.argv:
    report("scripts/evaluate.py path (run_evaluation) device=gpu tta_hflip=true fuse=true", evaluate_tta(True))
    report("scripts/evaluate.py path (run_evaluation) device=gpu tta_hflip=true fuse=false", evaluate_tta(False))

def resume():
    from hydra import compose, initialize_config_dir
    from trainer.engine import fit
    d = tempfile.mkdtemp()
    for epochs, res in ((1, "null"), (2, "auto")):
        with initialize_config_dir(config_dir=os.path.abspath("conf"), version_base=None):
            cfg = compose("config", overrides=["device=gpu", "debug=fast", "trainer.progress=false", "fuse=false",
                                                "trainer.image_grid=false", f"trainer.epochs={epochs}",
                                                f"trainer.resume={res}", "trainer.ema.enabled=true"])
        fit(cfg, d)
if __name__ == "__main__" and "resume" in sys.argv:
    report("trainer checkpoint + resume on gpu (fuse=false, ema)", resume)
