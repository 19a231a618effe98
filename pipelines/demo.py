"""`make demo`: the main job on the bundled Online Retail data, end to end.

1. data      load, clean, split, summary
2. train     fit the model on all data into a verified bundle (models/demo)
3. serve     recommend by customer id and for an anonymous basket, as a service would
4. evaluate  the GAN next to the baselines and its retrieval part (default settings; the
             tuned comparison is benchmarks/quality.py), CIs, paired tests, what the
             adversarial part added → reports/demo/report.html
5. batch     score every customer into recs/demo, published atomically (as the nightly job)
Each stage prints what it did; the first failure stops the demo with its exit code.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = "gan"
BUNDLE = ROOT / "models" / "demo"


def stages() -> list[tuple[str, list[list[str]]]]:
    return [
        ("1. data: load, clean, split (bundled UCI Online Retail)",
         [["info", "--data", "online_retail", "--split"]]),
        (f"2. train: {MODEL} on all purchases -> {BUNDLE}",
         [["train", "--data", "online_retail", "--model", MODEL, "--out", str(BUNDLE)]]),
        ("3. serve: recommendations by customer id and for an anonymous basket",
         [["recommend", "--model", str(BUNDLE), "--user", "12347", "--n", "5"],
          ["recommend", "--model", str(BUNDLE), "--history", "85123A,71053", "--n", "5"]]),
        # defaults, not tuned, to keep the demo short; the tuned comparison (same budget for
        # every model, chosen on validation) is benchmarks/quality.py, results in RESULTS.md
        ("4. evaluate (default settings, untuned): GAN vs baselines and vs its retrieval part "
         "(what the adversarial part added), CIs, paired tests -> reports/demo/report.html",
         [["evaluate", "--data", "online_retail", "--models",
           "gan,retrieval,ease,itemknn,ials,pop",
           "--no-tune", "--out", str(ROOT / "reports" / "demo")]]),
        ("5. batch: score every customer -> recs/demo (partitioned, published atomically)",
         # one worker: for ~4k customers, starting worker processes costs more than it saves
         [["batch-score", "--model", str(BUNDLE), "--out", str(ROOT / "recs" / "demo"),
           "--n", "20", "--partition-size", "1000", "--workers", "1"]]),
    ]  # fmt: skip


def main() -> int:
    from recogan.cli import main as cli

    for title, commands in stages():
        print(f"\n== {title}", flush=True)
        for args in commands:
            rc = cli(args)
            if rc:
                print(f"demo stopped: `recogan {' '.join(args)}` exited {rc}", file=sys.stderr)
                return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
