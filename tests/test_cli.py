import json
import subprocess
import sys

import pytest

from recogan.cli import main


def test_info_synthetic_csv(tmp_path, tiny_frame, capsys):
    tiny_frame.rename(columns={"timestamp": "when"}).to_csv(tmp_path / "i.csv", index=False)
    args = ["info", "--interactions", str(tmp_path / "i.csv"), "--time-col", "when", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["users"] == 3 and out["interactions"] == 5


def test_info_clear_error(tmp_path, tiny_frame, capsys):
    tiny_frame.to_csv(tmp_path / "i.csv", index=False)
    assert main(["info", "--interactions", str(tmp_path / "i.csv"), "--time-col", "when"]) == 1
    err = capsys.readouterr().err
    assert "missing column(s) 'when'" in err and "Traceback" not in err


@pytest.mark.realdata
def test_info_online_retail_module_entry():
    out = subprocess.run(
        [sys.executable, "-m", "recogan", "info", "--data", "online_retail", "--split"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "users          4,334" in out and "cancellations" in out and "test" in out


def test_import_is_cheap():
    code = (
        "import sys, recogan; "
        "print(sorted(m for m in ('torch', 'faiss', 'ray', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
