"""The packages' public names load on first use: `import seedzoo` stays free of torch, a name is imported
from its module once and kept, and a name that is not exported fails as a missing attribute does."""
import json
import subprocess
import sys

CODE = """
import json, sys
import seedzoo, seedzoo.weights
before = 'torch' in sys.modules
try:
    seedzoo.no_such_name
    missing = None
except AttributeError as error:
    missing = str(error)
transform = seedzoo.get_transform
print(json.dumps({"torch_before": before, "missing": missing,
                  "kept": vars(seedzoo).get("get_transform") is transform,
                  "from": transform.__module__,
                  "weights": seedzoo.weights.sha256_file.__module__,
                  "weights_kept": "sha256_file" in vars(seedzoo.weights)}))
"""


def test_public_names_load_on_first_use_and_are_kept():
    run = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    seen = json.loads(run.stdout)
    assert seen["torch_before"] is False
    assert seen["missing"] == "module 'seedzoo' has no attribute 'no_such_name'"
    assert seen["kept"] and seen["from"] == "seedzoo.factory"
    assert seen["weights"] == "seedzoo.weights.io" and seen["weights_kept"]


def test_every_exported_name_resolves():
    import seedzoo
    import seedzoo.weights

    for package in (seedzoo, seedzoo.weights):
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"
