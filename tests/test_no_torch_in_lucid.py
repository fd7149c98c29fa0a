"""lucid/ must never import torch: torch is a test and benchmark dependency only."""
import ast
import pathlib
import subprocess
import sys

LUCID = pathlib.Path(__file__).resolve().parents[1] / "lucid"


def test_no_torch_import_statement_in_lucid_sources():
    offenders = []
    for path in LUCID.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path}:{node.lineno}: {n}" for n in names if n.split(".")[0] in ("torch", "torchvision",
                                                                                             "timm")]
    assert not offenders, "lucid imports torch:\n" + "\n".join(offenders)


def test_importing_lucid_does_not_load_torch():
    code = "import sys, lucid, lucid.nn, lucid.optim, lucid.models; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
