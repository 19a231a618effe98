"""Model bundles on disk: one directory, verified on load, never unpickled.

Layout::

    NAME/
      manifest.json        format version, recogan version, created-at, model class + config,
                           dataset fingerprint, sha256 + size of every other file
      users.parquet        external user ids, row i = index i
      items.parquet        external item ids
      catalog.parquet      item attributes (title, category, price) when the data had a catalog
      arrays/*.npy         numpy state (seen-items CSR, popularity prior, model arrays);
                           read with allow_pickle=False
      weights.pt           torch state dicts, read with torch.load(weights_only=True)
      ...                  files a model writes itself (e.g. an index), hashed like the rest

A bundle is written into a temporary sibling directory and renamed into place, so readers see
the old bundle or the new one, never half of one. Loading checks the format version and every
checksum, and refuses missing, truncated, extra or altered files with a :class:`BundleError`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recogan.data import IdMap

FORMAT = "recogan-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class BundleError(ValueError):
    """A bundle is missing, incomplete, altered or of an unsupported format."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _version() -> str:
    from recogan import __version__

    return __version__


# ---------------------------------------------------------------------- writing
def atomic_directory(path: str | Path):
    """Context manager yielding a temporary directory that replaces ``path`` on success."""
    return _AtomicDir(Path(path))


class _AtomicDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir()
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        _fsync_tree(self.tmp)
        old = None
        if self.path.exists():
            old = self.path.parent / f".{self.path.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(self.path, old)
        os.rename(self.tmp, self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return False


def _fsync_tree(root: Path) -> None:
    for p in sorted(root.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def _write_ids(ids: IdMap, path: Path) -> None:
    values = pd.Series(ids.ids)
    if values.dtype == object:
        kinds = {type(v).__name__ for v in values}
        if len(kinds) > 1:
            raise BundleError(f"ids of mixed types {sorted(kinds)} cannot be saved; use one type")
    pd.DataFrame({"id": values}).to_parquet(path, index=False)


def save_model(model, path: str | Path) -> Path:
    """Write ``model`` (a fitted :class:`recogan.base.Model`) as a bundle at ``path``."""
    model._check_fitted()
    path = Path(path)
    with atomic_directory(path) as tmp:
        _write_ids(model.users_, tmp / "users.parquet")
        _write_ids(model.items_, tmp / "items.parquet")
        if model.catalog_ is not None:
            model.catalog_.to_parquet(tmp / "catalog.parquet", index=False)
        seen = model.seen_
        arrays = {
            "seen_indptr": seen.indptr.astype(np.int64),
            "seen_indices": seen.indices.astype(np.int32),
            "popularity": np.asarray(model.popularity_, dtype=np.float64),
        }
        for key, arr in model.state_arrays().items():
            arrays[f"model.{key}"] = np.asarray(arr)
        (tmp / "arrays").mkdir()
        for key, arr in arrays.items():
            if arr.dtype == object:
                raise BundleError(f"array {key!r} has dtype object; bundles hold numeric arrays")
            np.save(tmp / "arrays" / f"{key}.npy", arr, allow_pickle=False)
        states = model.torch_state()
        if states is not None:
            import torch

            torch.save(states, tmp / "weights.pt")
        if hasattr(model, "write_files"):
            model.write_files(tmp)
        files = {
            str(p.relative_to(tmp)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(tmp.rglob("*"))
            if p.is_file()
        }
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "recogan_version": _version(),
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
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
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return path


# ---------------------------------------------------------------------- reading
def read_manifest(path: str | Path, *, verify: bool = True) -> dict:
    """The manifest of a bundle; with ``verify`` every file's size and sha256 are checked."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: no model bundle here (not a directory)")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{path}: missing {MANIFEST}; not a recogan bundle or not fully written")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{mpath}: manifest is not valid JSON ({e})") from e
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{mpath}: not a recogan bundle (format={manifest.get('format')!r})")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{mpath}: bundle format version {version} is not supported "
            f"(this recogan reads version {FORMAT_VERSION})"
        )
    if verify:
        verify_files(path, manifest)
    return manifest


def verify_files(path: Path, manifest: dict) -> None:
    files = manifest.get("files", {})
    for rel, meta in files.items():
        f = path / rel
        if not f.is_file():
            raise BundleError(f"{path}: file {rel} listed in the manifest is missing")
        size = f.stat().st_size
        if size != meta["bytes"]:
            raise BundleError(
                f"{path}: file {rel} is {size} bytes, the manifest says {meta['bytes']} "
                "(truncated or altered)"
            )
        if sha256_file(f) != meta["sha256"]:
            raise BundleError(f"{path}: file {rel} fails its sha256 check (altered or corrupt)")
    present = {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()}
    extra = sorted(present - set(files) - {MANIFEST})
    if extra:
        raise BundleError(f"{path}: files not listed in the manifest: {extra[:5]}")


def _read_ids(path: Path) -> IdMap:
    return IdMap(pd.read_parquet(path)["id"].to_numpy())


def load_model(path: str | Path, device: str = "cpu", *, verify: bool = True):
    """Load a bundle into its model class (verifying it first). No pickle is ever read."""
    from recogan.base import model_class

    path = Path(path)
    manifest = read_manifest(path, verify=verify)
    spec = manifest["model"]
    cls = model_class(spec["class"])
    model = cls(spec["config"])
    ds = manifest["dataset"]
    model.users_ = _read_ids(path / "users.parquet")
    model.items_ = _read_ids(path / "items.parquet")
    model.n_users_, model.n_items_ = len(model.users_), len(model.items_)
    if (model.n_users_, model.n_items_) != (ds["n_users"], ds["n_items"]):
        raise BundleError(f"{path}: id files disagree with the manifest's dataset sizes")
    cat = path / "catalog.parquet"
    model.catalog_ = pd.read_parquet(cat) if cat.exists() else None
    arrays = {
        p.stem: np.load(p, allow_pickle=False) for p in sorted((path / "arrays").glob("*.npy"))
    }
    indices = arrays.pop("seen_indices")
    model.seen_ = sp.csr_matrix(
        (np.ones(indices.size, np.float32), indices, arrays.pop("seen_indptr")),
        shape=(model.n_users_, model.n_items_),
    )
    model.popularity_ = arrays.pop("popularity")
    model.fingerprint_ = ds["fingerprint"]
    model.dataset_name_ = ds["name"]
    model.train_end_ = ds["train_end"]
    model.set_state_arrays({k.removeprefix("model."): v for k, v in arrays.items()})
    weights = path / "weights.pt"
    if weights.exists():
        import torch

        states = torch.load(weights, map_location="cpu", weights_only=True)
        model.set_torch_state(states, device=device)
    if hasattr(model, "read_files"):
        model.read_files(path)
    model.manifest_ = manifest
    return model
