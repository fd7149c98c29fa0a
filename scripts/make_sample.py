"""Rebuild the embedded CIFAR-10 sample (data/cifar10_sample) from the shared CIFAR-10 JPEG archive.

    python scripts/make_sample.py                                   # the committed sample, byte for byte
    python scripts/make_sample.py --archive ../shared/data/cifar10-jpg.tar.gz --out /tmp/sample --seed 0

The archive holds ``cifar10/{train,test}/<class>/NNNN.jpg`` (5,000 train and 1,000 test per class). For each
split and class, in the alphabetical class order, the script lists the file names in sorted order and picks
``--train-per-class`` (200) or ``--test-per-class`` (50) of them with ``rng.choice(len, k, replace=False)``
from one ``np.random.default_rng(seed)`` (seed 0), then copies the chosen JPEG bytes unchanged to
``<out>/{train,test}/<class>/NNNN.jpg`` (same names, so each file can be traced back). It also writes
``<out>/MD5SUMS`` (``md5sum -c`` format), which ``data.verify=true`` checks. Members are read straight from the
archive; nothing is extracted into the repository. README.md in the output folder is hand-written and kept.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import shutil
import sys
import tarfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_ARCHIVE = ROOT.parent / "shared" / "data" / "cifar10-jpg.tar.gz"
DEFAULT_OUT = ROOT / "data" / "cifar10_sample"


def choose(names_by_class: dict, per_class: int, rng: np.random.Generator) -> dict:
    """{class: sorted names} -> {class: sorted chosen names}, classes visited alphabetically."""
    chosen = {}
    for cls in sorted(names_by_class):
        names = sorted(names_by_class[cls])
        if len(names) < per_class:
            raise SystemExit(f"class {cls!r} has {len(names)} images, fewer than {per_class}")
        picks = rng.choice(len(names), size=per_class, replace=False)
        chosen[cls] = sorted(names[i] for i in picks)
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=pathlib.Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-per-class", type=int, default=200)
    parser.add_argument("--test-per-class", type=int, default=50)
    args = parser.parse_args(argv)
    if not args.archive.is_file():
        print(f"archive not found: {args.archive}", file=sys.stderr)
        return 1

    with tarfile.open(args.archive, "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile() and m.name.endswith(".jpg")}
        listing: dict = {"train": {}, "test": {}}
        for name in members:
            parts = pathlib.PurePosixPath(name).parts      # cifar10, split, class, file
            if len(parts) == 4 and parts[1] in listing:
                listing[parts[1]].setdefault(parts[2], []).append(parts[3])
        rng = np.random.default_rng(args.seed)
        plan = {"train": choose(listing["train"], args.train_per_class, rng),
                "test": choose(listing["test"], args.test_per_class, rng)}

        for split in plan:  # start from clean split folders (README.md and other files are left alone)
            shutil.rmtree(args.out / split, ignore_errors=True)
        wanted = [f"{split}/{cls}/{fname}" for split, by_class in plan.items()
                  for cls, names in by_class.items() for fname in names]
        digests = {}
        # Read in archive order: a .tar.gz only streams forwards, and going back means decompressing again.
        for rel in sorted(wanted, key=lambda r: members[f"cifar10/{r}"].offset_data):
            data = tar.extractfile(members[f"cifar10/{rel}"]).read()
            (args.out / rel).parent.mkdir(parents=True, exist_ok=True)
            (args.out / rel).write_bytes(data)
            digests[rel] = hashlib.md5(data).hexdigest()
        sums = [f"{digests[rel]}  {rel}" for rel in wanted]
    tmp = args.out / "MD5SUMS.tmp"
    tmp.write_text("\n".join(sums) + "\n")
    os.replace(tmp, args.out / "MD5SUMS")
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    counts = {s: sum(len(v) for v in plan[s].values()) for s in plan}
    print(f"wrote {counts['train']} train + {counts['test']} test images to {args.out} "
          f"({total / 1e6:.2f} MB of file contents)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
