"""`make demo`: the main job on the bundled Online Retail data.

Steps: load + clean → split → summary; ...; batch-score every customer into recs/demo.
Later stages (train → evaluate) are added here as the library grows; each prints what it did.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    from recogan.cli import main as cli

    print("== 1. data: load, clean, split (bundled UCI Online Retail)")
    rc = cli(["info", "--data", "online_retail", "--split"])
    if rc:
        return rc
    rc = batch_stage(cli)
    return rc


def batch_stage(cli) -> int:
    """Nightly batch scoring of every customer with the demo's model (``models/demo``, or a
    Popularity bundle trained here when no model was trained before this stage)."""
    print("== batch: score every customer, publish recs/demo atomically")
    bundle = ROOT / "models" / "demo"
    if not (bundle / "manifest.json").is_file():
        from recogan.baselines import Popularity
        from recogan.datasets import online_retail

        bundle = ROOT / "models" / "demo-popularity"
        print(f"   (no models/demo: training a Popularity bundle at {bundle.relative_to(ROOT)})")
        Popularity().fit(online_retail()).save(bundle)
    out = ROOT / "recs" / "demo"
    # one worker: for ~4k customers, starting worker processes costs more than it saves
    args = ["--model", str(bundle), "--out", str(out), "--n", "20", "--partition-size", "1000"]
    args += ["--workers", "1"]
    rc = cli(["batch-score", *args])
    if rc == 0:
        from recogan.batch import read_recommendations

        print(read_recommendations(out).head(5).to_string(index=False))
    return rc


if __name__ == "__main__":
    sys.exit(main())
