"""Builders shared by the robustness tests."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path


def write_legacy(model, path: Path) -> None:
    """A format-1 bundle (files directly in ``path``, no manifest checksum), as recogan wrote
    before versioned bundles."""
    from recogan.artifacts import MANIFEST, files_dir, read_manifest, save_model

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix="legacy-"))
    try:
        save_model(model, tmp / "b")
        manifest = read_manifest(tmp / "b")
        shutil.copytree(files_dir(tmp / "b"), path)
    finally:
        shutil.rmtree(tmp)
    for key in ("version", "manifest_sha256"):
        manifest.pop(key)
    manifest["format_version"] = 1
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def edit_manifest(path: Path, change, *, fix_checksum: bool = True) -> dict:
    """Apply ``change(manifest)`` to a bundle's manifest (re-computing its checksum unless
    told not to, as a determined editor would)."""
    from recogan.artifacts import manifest_digest

    mpath = Path(path) / "manifest.json"
    m = json.loads(mpath.read_text())
    change(m)
    if fix_checksum:
        m["manifest_sha256"] = manifest_digest(m)
    mpath.write_text(json.dumps(m, indent=2, sort_keys=True))
    return m


def relist(path: Path, rel: str) -> None:
    """Record the current size and sha256 of one file in the manifest (a consistent
    tampering: the file passes its checksum and must be refused for what it holds)."""
    from recogan._fs import sha256_file
    from recogan.artifacts import files_dir

    f = files_dir(path) / rel

    def change(m):
        m["files"][rel] = {"sha256": sha256_file(f), "bytes": f.stat().st_size}

    edit_manifest(path, change)


def snapshot(path: Path) -> dict:
    """Every file under ``path`` (relative name → bytes): to assert a folder is unchanged."""
    path = Path(path)
    if path.is_file():
        return {".": path.read_bytes()}
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def aux_entries(parent: Path, name: str) -> list[str]:
    """Temporary leftovers ``.NAME.*`` next to a published path."""
    return sorted(p.name for p in Path(parent).iterdir() if p.name.startswith(f".{name}."))
