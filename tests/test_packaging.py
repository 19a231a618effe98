"""The wheel carries the bundled dataset (package data), so an installed recogan can train on it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_the_bundled_dataset(tmp_path):
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    shutil.copytree(ROOT / "recogan", src / "recogan", symlinks=True)
    shutil.copytree(ROOT / "data", src / "data")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation"]
    subprocess.run([*cmd, "-w", str(tmp_path / "whl"), "-q"], check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "whl").glob("recogan-*.whl")
    with zipfile.ZipFile(wheel) as z:
        sizes = {i.filename: i.file_size for i in z.infolist()}
    for name in ("online_retail.parquet", "README.md"):
        assert sizes[f"recogan/_data/{name}"] == (ROOT / "data" / name).stat().st_size


def test_package_data_links_to_the_top_level_data():
    for name in ("online_retail.parquet", "README.md"):
        link = ROOT / "recogan" / "_data" / name
        assert link.resolve() == (ROOT / "data" / name).resolve()
