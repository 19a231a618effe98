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
    if rc:
        return rc

    print("== 2. evaluate: tuned baselines, CIs, paired tests → reports/demo/report.html")
    rc = cli(
        [
            "evaluate",
            "--data",
            "online_retail",
            "--models",
            "pop,itemknn,ease,ials",
            "--out",
            str(ROOT / "reports" / "demo"),
        ]
    )
    return rc


if __name__ == "__main__":
    sys.exit(main())
