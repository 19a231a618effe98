"""Writing a bundle: a whole new version beside the old, one atomic switch, clean-up."""

from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from recogan import _fs
from recogan.artifacts._common import (
    _VERSION,
    CATALOG_FORMAT_VERSION,
    CHECKSUM_FIELD,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    BundleError,
    _version,
    is_bundle,
    is_leftover,
    manifest_digest,
)
from recogan.catalog import CHANGES_FILE
from recogan.data import IdMap


# ---------------------------------------------------------------------- writing
def save_model(
    model, path: str | Path, *, force: bool = False, expect_version: str | None = None
) -> Path:
    """Write ``model`` (a fitted :class:`recogan.base.Model`) as a bundle at ``path``.

    ``path`` must be absent, empty or a bundle; anything else raises
    :class:`~recogan._fs.OutputDirError` unless ``force`` (then it is replaced).
    ``expect_version``: publish only if the bundle at ``path`` is still that version (checked
    under the publish lock), else raise :class:`BundleError`: a change saved by a service must
    not replace a model that was re-trained and published meanwhile.
    On success ``model.manifest_`` is the manifest written.
    """
    model.check_fitted()
    path = _fs.as_path(path, "bundle path")
    what = "a recogan model bundle"
    _fs.check_output_dir(path, recognise=is_bundle, what=what, force=force, allow=is_leftover)
    path.parent.mkdir(parents=True, exist_ok=True)
    version = "v-" + _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    version += f"-{uuid.uuid4().hex[:8]}"
    with _fs.building(_fs.aux_name(path, "tmp")) as tmp:
        files = _write_payload(model, tmp / version)
        catalog = _catalog_summary(model)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION if catalog is None else CATALOG_FORMAT_VERSION,
            "recogan_version": _version(),
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "version": version,
            "model": {
                "name": model.name,
                "class": type(model).__name__,
                "config": model.params(),
            },
            "dataset": {
                "name": model.dataset_name_,
                "fingerprint": model.fingerprint_,
                "n_users": int(model.n_users_),
                "n_items": int(model.n_items_),
                "train_end": int(model.train_end_),
            },
            "files": files,
        }
        if catalog is not None:
            manifest["catalog"] = catalog
        manifest[CHECKSUM_FIELD] = manifest_digest(manifest)
        data = json.dumps(manifest, indent=2, sort_keys=True).encode()
        (tmp / MANIFEST).write_bytes(data)
        _fs.fsync_tree(tmp)
        with _fs.locked(path.parent):
            _recover(path)
            # re-check under the lock: another process may have put something there meanwhile
            state = _fs.check_output_dir(
                path, recognise=is_bundle, what=what, force=force, allow=is_leftover
            )
            previous = _current_version(path) if state == "ours" else None
            if expect_version is not None and previous != expect_version:
                raise BundleError(
                    f"{path}: the bundle is now version {previous}, not {expect_version} "
                    "that these changes were made on (it was re-published meanwhile): load "
                    "it again and re-apply them"
                )
            if previous is not None:
                # a versioned bundle: add the version, then switch the manifest (the pointer)
                os.rename(tmp / version, path / version)
                _fs.fsync_dir(path)
                _fs.atomic_write_bytes(path / MANIFEST, data)
                _collect(path, keep={version, previous})
            else:  # absent, empty, a format-1 bundle, or forced: swap the whole directory
                _fs.replace_dir(tmp, path)
            _fs.remove_stale(path)
        _fs.remove(tmp)  # in-place publish: what is left is the staged manifest
    model.manifest_, model.manifest_sha256_ = manifest, _fs.sha256_bytes(data)
    return path


def _write_payload(model, vdir: Path) -> dict:
    """Write the model's files into ``vdir``; return their sha256 and size by relative path."""
    vdir.mkdir()
    _write_ids(model.users_, vdir / "users.parquet")
    _write_ids(model.items_, vdir / "items.parquet")
    if model.catalog_ is not None:
        model.catalog_.to_parquet(vdir / "catalog.parquet", index=False)
    seen = model.seen_
    arrays = {
        "seen_indptr": seen.indptr.astype(np.int64),
        "seen_indices": seen.indices.astype(np.int32),
        "popularity": np.asarray(model.popularity_, dtype=np.float64),
    }
    for key, arr in model.state_arrays().items():
        arrays[f"model.{key}"] = np.asarray(arr)
    (vdir / "arrays").mkdir()
    for key, arr in arrays.items():
        if arr.dtype == object:
            raise BundleError(f"array {key!r} has dtype object; bundles hold numeric arrays")
        np.save(vdir / "arrays" / f"{key}.npy", arr, allow_pickle=False)
    states = model.torch_state()
    if states is not None:
        import torch

        torch.save(states, vdir / "weights.pt")
    model.write_files(vdir)
    _write_catalog_changes(model, vdir)
    return {
        p.relative_to(vdir).as_posix(): {"sha256": _fs.sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(vdir.rglob("*"))
        if p.is_file()
    }


def _catalog_summary(model) -> dict | None:
    """The manifest's ``catalog`` section: counts of the catalogue changes (None: none)."""
    changes = model.catalog_changes_
    if changes is None or changes.is_empty(model.n_items_):
        return None
    return {
        "n_trained": int(changes.n_trained),
        "added": changes.n_added(model.n_items_),
        "withdrawn": changes.n_withdrawn,
        "changes": len(changes.log),
    }


def _write_catalog_changes(model, vdir: Path) -> None:
    if _catalog_summary(model) is None:
        return
    path = vdir / CHANGES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.catalog_changes_.to_bytes(model.items_))


def _write_ids(ids: IdMap, path: Path) -> None:
    values = pd.Series(ids.ids)
    if values.dtype == object:
        kinds = {type(v).__name__ for v in values}
        if len(kinds) > 1:
            raise BundleError(f"ids of mixed types {sorted(kinds)} cannot be saved; use one type")
    pd.DataFrame({"id": values}).to_parquet(path, index=False)


def _current_version(path: Path) -> str | None:
    """The version a format-2 bundle at ``path`` points to (None: not a versioned bundle)."""
    try:
        m = json.loads((path / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return None
    v = m.get("version") if isinstance(m, dict) else None
    if isinstance(v, str) and _VERSION.match(v) and (path / v).is_dir():
        return v
    return None


def _collect(path: Path, keep: set[str]) -> None:
    """Remove version directories other than ``keep`` that no reader holds, and interrupted
    manifest writes. Called under the publish lock."""
    for p in path.iterdir():
        if is_leftover(p.name):
            p.unlink(missing_ok=True)
        elif _VERSION.match(p.name) and p.name not in keep and p.is_dir():
            fd = _fs.try_lock(p)  # a loading reader holds a shared lock: leave it
            if fd is not None:
                try:
                    _fs.remove(p)
                finally:
                    _fs.release(fd)


def _complete(tmp: Path) -> bool:
    """Whether a temporary directory holds a whole bundle (manifest valid, version present)."""
    try:
        m = json.loads((tmp / MANIFEST).read_bytes())
        return m.get(CHECKSUM_FIELD) == manifest_digest(m) and (tmp / m["version"]).is_dir()
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _recover(path: Path) -> str | None:
    """Complete or undo a swap that a crash interrupted (under the publish lock)."""
    pending = [t for t in reversed(_fs.aux_dirs(path, "tmp")) if _fs.is_stale(t) and _complete(t)]
    return _fs.recover_dir(path, pending)


def recover_bundle(path: str | Path) -> str | None:
    """Repair the bundle at ``path`` after a crashed save: complete or undo an interrupted
    swap and remove leftovers of dead writers. Returns what was done (None: nothing to do)."""
    path = Path(path)
    if not path.parent.is_dir():
        return None
    with _fs.locked(path.parent):
        action = _recover(path)
        removed = _fs.remove_stale(path)
    return action or ("cleaned" if removed else None)
