"""Convert a timm / PyTorch InceptionNeXt checkpoint into a lucid weights file (safetensors, no pickle).

    python scripts/convert_timm.py model.safetensors lucid_tiny.safetensors --model inception_next_tiny
    python scripts/convert_timm.py inceptionnext_tiny.pth lucid_tiny.safetensors --model inception_next_tiny

The input may be a safetensors file (as timm publishes) or a torch state dict / training checkpoint (read
with ``torch.load(weights_only=True)``, so no code in it runs; torch is needed only for that format). The
keys of timm's InceptionNeXt and lucid's are identical; the script strips wrappers ("state_dict", "model",
"module." prefixes), checks every key and shape against the lucid model, and writes atomically. Then:

    model = lucid.models.create_model("inception_next_tiny", pretrained_path="lucid_tiny.safetensors")
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def read_state_dict(path: pathlib.Path) -> dict:
    """Name -> float32/int64 NumPy array from a safetensors file or a torch checkpoint."""
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        try:
            return dict(load_file(str(path)))
        except Exception:  # bf16/fp16 tensors or torch-only dtypes: read through torch if present
            from safetensors.torch import load_file as load_torch

            return {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in load_torch(str(path)).items()}
    import torch  # only for .pth/.pt inputs

    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model", "state_dict_ema", "model_ema"):
        if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
            break
    return {k: (v.float() if v.is_floating_point() else v).numpy() for k, v in obj.items() if hasattr(v, "numpy")}


def convert(src: pathlib.Path, dst: pathlib.Path, model_name: str, num_classes: int | None = None) -> list:
    import lucid
    from lucid.models import create_model

    raw = read_state_dict(src)
    state = {}
    for k, v in raw.items():
        k = k[len("module."):] if k.startswith("module.") else k
        state[k] = v.astype(np.float32) if v.dtype.kind == "f" else v.astype(np.int64)
    if num_classes is None:
        num_classes = int(state["head.fc2.weight"].shape[0]) if "head.fc2.weight" in state else 1000
    model = create_model(model_name, num_classes=num_classes)
    own = model.state_dict()
    # timm keeps BatchNorm's num_batches_tracked; older checkpoints may lack it
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = np.zeros((), dtype=np.int64)
    model.load_state_dict({k: lucid.Tensor(v) for k, v in state.items()})  # raises listing bad keys/shapes
    lucid.save(model.state_dict(), str(dst))
    return sorted(state)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", type=pathlib.Path, help="timm/PyTorch checkpoint (.safetensors, .pth, .pt, .bin)")
    p.add_argument("dst", type=pathlib.Path, help="lucid weights file to write (.safetensors)")
    p.add_argument("--model", required=True, help="lucid model name, e.g. inception_next_tiny")
    p.add_argument("--num-classes", type=int, default=None, help="classifier size (default: from the weights)")
    args = p.parse_args(argv)
    if not args.src.is_file():
        print(f"error: {args.src} does not exist", file=sys.stderr)
        return 2
    try:
        keys = convert(args.src, args.dst, args.model, args.num_classes)
    except (RuntimeError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.dst} ({len(keys)} tensors) for {args.model}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
