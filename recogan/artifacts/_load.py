"""Reading a bundle: resolve the manifest, hold its version, read every file once, verified."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recogan import _fs
from recogan.artifacts._common import (
    _VERSION,
    CHECKSUM_FIELD,
    FORMAT,
    LOAD_ATTEMPTS,
    MANIFEST,
    READABLE_VERSIONS,
    BundleError,
    _Changed,
    is_leftover,
    manifest_digest,
)
from recogan.artifacts._save import recover_bundle
from recogan.catalog import CHANGES_FILE, CatalogChanges
from recogan.data import IdMap
from recogan.registry import MODEL_REGISTRY, model_class

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Bundle:
    """One resolved bundle version: its manifest and the directory holding its files."""

    path: Path
    files_dir: Path
    manifest: dict
    manifest_bytes: bytes

    @property
    def manifest_sha256(self) -> str:
        return _fs.sha256_bytes(self.manifest_bytes)

    @property
    def version(self) -> str | None:
        return self.manifest.get("version")


def _read_manifest_bytes(path: Path) -> bytes:
    if not path.exists() and _fs.aux_dirs(path, "old"):
        try:  # a save crashed between its two renames: put the old or the new bundle back
            recover_bundle(path)
        except OSError as e:
            raise BundleError(
                f"{path}: a save was interrupted and the bundle could not be restored ({e}); "
                f"the previous copy is in {_fs.aux_dirs(path, 'old')[-1]}"
            ) from e
    if not path.is_dir():
        what = "not a directory" if path.exists() else "not a directory: nothing there"
        raise BundleError(f"{path}: no model bundle here ({what})")
    try:
        return (path / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise BundleError(
            f"{path}: missing {MANIFEST}; not a recogan bundle or not fully written"
        ) from None
    except OSError as e:
        raise BundleError(f"{path / MANIFEST}: cannot be read ({e})") from e


def _parse_manifest(data: bytes, mpath: Path) -> dict:
    try:
        manifest = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{mpath}: manifest is not valid JSON ({e})") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        fmt = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise BundleError(f"{mpath}: not a recogan bundle (format={fmt!r})")
    version = manifest.get("format_version")
    if version not in READABLE_VERSIONS:
        raise BundleError(
            f"{mpath}: bundle format version {version} is not supported "
            f"(this recogan reads versions {', '.join(map(str, READABLE_VERSIONS))})"
        )
    if CHECKSUM_FIELD in manifest or version >= 2:
        if manifest.get(CHECKSUM_FIELD) != manifest_digest(manifest):
            raise BundleError(
                f"{mpath}: the manifest fails its checksum ({CHECKSUM_FIELD}): it was edited "
                "or is corrupt; re-save the model instead of editing its manifest"
            )
    else:
        log.warning(
            "%s: bundle written by an older recogan (format 1, no manifest checksum); "
            "re-save it to protect its manifest",
            mpath,
        )
    for key in ("model", "dataset", "files"):
        if not isinstance(manifest.get(key), dict):
            raise BundleError(f"{mpath}: the manifest has no {key!r} section")
    for rel in manifest["files"]:
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
            raise BundleError(f"{mpath}: the manifest lists an unsafe file path {rel!r}")
    if version >= 2 and not _VERSION.match(str(manifest.get("version", ""))):
        raise BundleError(f"{mpath}: the manifest names no valid version directory")
    return manifest


def _changed(path: Path, data: bytes) -> bool:
    try:
        return (path / MANIFEST).read_bytes() != data
    except OSError:
        return True


def _retrying(once, path: Path):
    """Run ``once()`` again while the bundle at ``path`` is re-published under it."""
    for attempt in range(LOAD_ATTEMPTS):
        try:
            return once()
        except _Changed:
            time.sleep(0.001 * attempt)
    raise BundleError(f"{path}: the bundle was re-published {LOAD_ATTEMPTS} times while loading")


@contextlib.contextmanager
def open_bundle(path: str | Path, *, manifest: bytes | None = None) -> Iterator[Bundle]:
    """Resolve the bundle at ``path`` (or the exact version whose manifest bytes are
    ``manifest``) and hold a shared lock on its version directory while the block runs, so no
    save removes it meanwhile."""
    path = _fs.as_path(path, "bundle path")
    with contextlib.ExitStack() as stack:
        yield _retrying(lambda: stack.enter_context(_open_once(path, manifest)), path)


@contextlib.contextmanager
def _open_once(path: Path, pinned: bytes | None) -> Iterator[Bundle]:
    data = pinned if pinned is not None else _read_manifest_bytes(path)
    mpath = path / MANIFEST
    manifest = _parse_manifest(data, mpath)
    if manifest["format_version"] < 2:
        if pinned is not None and _changed(path, pinned):
            raise BundleError(
                f"{path}: the bundle changed since this job verified it (manifest sha256 "
                f"{_fs.sha256_bytes(pinned)[:12]}); refusing to mix versions: re-run the job"
            )
        yield Bundle(path, path, manifest, data)
        return
    vdir = path / manifest["version"]
    fd = _fs.try_lock(vdir, shared=True)
    if fd is None or not vdir.is_dir():
        _fs.release(fd)
        if pinned is None and _changed(path, data):
            raise _Changed
        raise BundleError(
            f"{path}: version {manifest['version']} named by the manifest is missing"
            + (" (the bundle was re-published and that version removed)" if pinned else "")
        )
    try:
        yield Bundle(path, vdir, manifest, data)
    finally:
        _fs.release(fd)


def read_manifest(path: str | Path, *, verify: bool = True) -> dict:
    """The manifest of a bundle (its own checksum checked); with ``verify`` every file's size
    and sha256 are checked too."""
    path = _fs.as_path(path, "bundle path")

    def once():
        with _open_once(path, None) as b:
            if verify:
                _check_listing(b)
                for rel in b.manifest["files"]:
                    _read_file(b, rel, verify=True)
            return b.manifest

    return _retrying(once, path)


def files_dir(path: str | Path) -> Path:
    """The directory holding the files of the bundle's current version."""
    with open_bundle(path) as b:
        return b.files_dir


def _check_listing(b: Bundle) -> None:
    files = b.manifest["files"]
    for rel, meta in files.items():
        f = b.files_dir / rel
        if not f.is_file():
            raise BundleError(f"{b.path}: file {rel} listed in the manifest is missing")
        size = f.stat().st_size
        if size != meta.get("bytes"):
            raise BundleError(
                f"{b.path}: file {rel} is {size} bytes, the manifest says {meta.get('bytes')} "
                "(truncated or altered)"
            )
    present = {p.relative_to(b.files_dir).as_posix() for p in b.files_dir.rglob("*") if p.is_file()}
    extra = sorted(present - set(files) - {MANIFEST})
    if b.files_dir == b.path:  # format 1: our own leftovers may sit next to the files
        extra = [e for e in extra if not is_leftover(e)]
    if extra:
        raise BundleError(f"{b.path}: files not listed in the manifest: {extra[:5]}")


def _read_file(b: Bundle, rel: str, *, verify: bool) -> bytes:
    """The bytes of one listed file, read once and checked against the manifest."""
    meta = b.manifest["files"].get(rel)
    if meta is None:
        raise BundleError(f"{b.path}: the manifest lists no {rel}")
    try:
        data = (b.files_dir / rel).read_bytes()
    except FileNotFoundError:
        if b.files_dir == b.path and _changed(b.path, b.manifest_bytes):
            raise _Changed from None
        raise BundleError(f"{b.path}: file {rel} listed in the manifest is missing") from None
    if verify:
        if len(data) != meta.get("bytes") or _fs.sha256_bytes(data) != meta.get("sha256"):
            if b.files_dir == b.path and _changed(b.path, b.manifest_bytes):
                raise _Changed
            if len(data) != meta.get("bytes"):
                raise BundleError(
                    f"{b.path}: file {rel} is {len(data)} bytes, the manifest says "
                    f"{meta.get('bytes')} (truncated or altered)"
                )
            raise BundleError(f"{b.path}: file {rel} fails its sha256 check (altered or corrupt)")
    return data


def _parse(b: Bundle, rel: str, data: bytes, how):
    try:
        return how(io.BytesIO(data))
    except Exception as e:
        hint = ""
        if "pickle" in str(e).lower() or type(e).__name__ == "UnpicklingError":
            hint = "; it holds pickled Python objects, which recogan never loads"
        raise BundleError(f"{b.path}: file {rel} cannot be read{hint} ({e})") from e


def _npy(f) -> np.ndarray:
    return np.load(f, allow_pickle=False)


def _ids(f) -> IdMap:
    frame = pd.read_parquet(f)
    if "id" not in frame.columns:
        raise ValueError("no 'id' column")
    return IdMap(frame["id"].to_numpy())


def load_model(
    path: str | Path, device: str = "cpu", *, verify: bool = True, manifest: bytes | None = None
):
    """Load a bundle into its model class (verifying it first). No pickle is ever read.

    ``manifest``: the bytes of a manifest this caller already verified (a batch job's
    workers): exactly that version is loaded, or a :class:`BundleError` says it changed.
    """
    path = _fs.as_path(path, "bundle path")

    def once():
        with _open_once(path, manifest) as b:
            return _build(b, device, verify)

    return _retrying(once, path)


def _build(b: Bundle, device: str, verify: bool):
    if verify:
        _check_listing(b)
    model = _new_model(b)
    reader = _Reader(b, verify)
    try:
        arrays = _read_common(model, reader, b.manifest["dataset"])
        _read_state(model, reader, arrays, device)
        if verify:  # files the model reads itself (an index) are checked before it does
            for rel in sorted(set(b.manifest["files"]) - reader.done):
                _read_file(b, rel, verify=True)
        model.read_files(b.files_dir)
    except BundleError:
        raise
    except (
        KeyError,
        IndexError,
        TypeError,
        ValueError,
        RuntimeError,
        AttributeError,
        OSError,
    ) as e:
        what = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise BundleError(
            f"{b.path}: its files do not fit model class {type(model).__name__} ({what}); the "
            "bundle is damaged or its manifest names the wrong class"
        ) from e
    model.manifest_ = b.manifest
    model.manifest_sha256_ = b.manifest_sha256
    return model


def _new_model(b: Bundle):
    """An unfitted instance of the class and settings the manifest names."""
    mpath = b.path / MANIFEST
    spec = b.manifest["model"]
    try:
        cls = model_class(str(spec.get("class")))
    except ValueError:
        raise BundleError(
            f"{mpath}: names model class {spec.get('class')!r}, which this recogan does not "
            f"know (known: {', '.join(MODEL_REGISTRY)})"
        ) from None
    try:
        return cls(spec.get("config") or {})
    except (TypeError, ValueError) as e:
        raise BundleError(f"{mpath}: its settings do not fit {cls.__name__}: {e}") from e


class _Reader:
    """Reads listed files of one bundle, each once and checked, remembering which."""

    def __init__(self, b: Bundle, verify: bool) -> None:
        self.b, self.verify, self.done = b, verify, set()

    def __call__(self, rel: str, how):
        self.done.add(rel)
        return _parse(self.b, rel, _read_file(self.b, rel, verify=self.verify), how)

    def has(self, rel: str) -> bool:
        return rel in self.b.manifest["files"]


def _read_common(model, read: _Reader, ds: dict) -> dict[str, np.ndarray]:
    """What every model keeps (``Model._remember``): ids, catalog, seen items, popularity.
    Returns the model's own arrays (the other ``arrays/*.npy``)."""
    model.users_ = read("users.parquet", _ids)
    model.items_ = read("items.parquet", _ids)
    model.n_users_, model.n_items_ = len(model.users_), len(model.items_)
    if (model.n_users_, model.n_items_) != (ds.get("n_users"), ds.get("n_items")):
        raise BundleError(f"{read.b.path}: id files disagree with the manifest's dataset sizes")
    has_catalog = read.has("catalog.parquet")
    model.catalog_ = read("catalog.parquet", pd.read_parquet) if has_catalog else None
    arrays = {
        PurePosixPath(rel).stem: read(rel, _npy)
        for rel in sorted(read.b.manifest["files"])
        if rel.startswith("arrays/") and rel.endswith(".npy")
    }
    indices = arrays.pop("seen_indices")
    model.seen_ = sp.csr_matrix(
        (np.ones(indices.size, np.float32), indices, arrays.pop("seen_indptr")),
        shape=(model.n_users_, model.n_items_),
    )
    model.popularity_ = arrays.pop("popularity")
    if read.has(CHANGES_FILE):  # catalogue changes since training (recogan.catalog)
        model.catalog_changes_ = read(
            CHANGES_FILE, lambda f: CatalogChanges.from_bytes(f.read(), model.items_)
        )
    model.fingerprint_ = ds["fingerprint"]
    model.dataset_name_ = ds["name"]
    model.train_end_ = ds["train_end"]
    return {k.removeprefix("model."): v for k, v in arrays.items()}


def _read_state(model, read: _Reader, arrays: dict[str, np.ndarray], device: str) -> None:
    """The model's own numpy arrays and torch state dicts."""
    model.set_state_arrays(arrays)
    if read.has("weights.pt"):
        import torch  # torch stays behind the lazy boundary: only torch models need it

        states = read(
            "weights.pt",
            lambda f: torch.load(f, map_location="cpu", weights_only=True),
        )
        model.set_torch_state(states, device=device)
