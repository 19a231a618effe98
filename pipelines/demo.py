"""`make demo`: the main job on the bundled Online Retail data.

Steps: load + clean → split → summary. Later stages (train → evaluate → batch-score) are added
here as the library grows; each prints what it did.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    from recogan.cli import main as cli

    print("== 1. data: load, clean, split (bundled UCI Online Retail)")
    rc = cli(["info", "--data", "online_retail", "--split"])
    if rc == 0:
        rc = serve(cli)
    return rc


def serve(cli) -> int:
    """Train a fast model on all data into a bundle, then serve it by customer id."""
    from recogan.base import model_class

    def available(name):  # baselines land on their own branches; take what is there
        try:
            model_class(name)
            return True
        except (ImportError, AttributeError):
            return False

    name = next(m for m in ("ease", "itemknn", "pop") if available(m))
    out = ROOT / "models" / f"demo-{name}"
    print(f"== serve: train {name} on all data -> {out}, then recommend by customer id")
    rc = cli(["train", "--data", "online_retail", "--model", name, "--out", str(out)])
    for args in (["--user", "12347", "--n", "5"], ["--history", "85123A,71053", "--n", "5"]):
        rc = rc or cli(["recommend", "--model", str(out), *args])
    return rc


if __name__ == "__main__":
    sys.exit(main())
