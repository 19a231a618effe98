"""Model bundles on disk: versioned, published atomically, verified on load, never unpickled.

Layout::

    NAME/
      manifest.json        format version, recogan version, created-at, model class + config,
                           dataset fingerprint, the version directory it describes, sha256 +
                           size of every file there, and its own checksum (``manifest_sha256``)
      v-<time>-<id>/       one immutable version of the bundle:
        users.parquet      external user ids, row i = index i
        items.parquet      external item ids
        catalog.parquet    item attributes (title, category, price) when the data had a catalog
        arrays/*.npy       numpy state (seen-items CSR, popularity prior, model arrays);
                           read with allow_pickle=False
        weights.pt         torch state dicts, read with torch.load(weights_only=True)
        ...                files a model writes itself (e.g. an index), hashed like the rest
      v-<older>/           the previous version, kept for readers that are still loading it

**Publishing.** A save writes a complete new bundle into a temporary sibling
``.NAME.tmp-<pid>-<id>/`` (locked while it is written) and fsyncs it. Under the parent
directory's publish lock it then either moves the new version directory into ``NAME/`` and
switches ``manifest.json`` with one atomic ``os.replace`` (the manifest is the pointer), or,
when ``NAME`` is absent or not a versioned bundle, renames the whole temporary directory into
place (moving what was there aside first). A crash at any point leaves the old or the new bundle
loadable: a swap interrupted between its two renames is completed or undone by the next load
or save (:func:`recover_bundle`), and leftovers of dead writers (``.NAME.tmp-*``, unused
versions) are removed by the next save. A save refuses to replace a path that holds anything
but a bundle unless ``force=True``.

**Loading.** The manifest is read once, its checksum checked, and the version directory it
names is share-locked (so no save removes it meanwhile); every file is read once into memory,
its size and sha256 checked against the manifest, and parsed from those bytes. A load that
races a re-publish therefore sees one whole bundle, never a mix: if the version it started on
disappears it starts over on the new manifest. Missing, truncated, extra or altered files, an
edited manifest, pickled payloads and unsupported formats are refused with a
:class:`BundleError` naming the file. Bundles written by earlier recogan versions (format 1:
the files directly in ``NAME/``, no manifest checksum) still load, with a warning to re-save.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recogan import _fs
from recogan._fs import sha256_file  # noqa: F401  (re-exported: recogan.artifacts.sha256_file)
from recogan.data import IdMap

log = logging.getLogger(__name__)

FORMAT = "recogan-bundle"
FORMAT_VERSION = 2
#: Format versions this recogan reads (1: flat layout without a manifest checksum).
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
CHECKSUM_FIELD = "manifest_sha256"
#: Version directories kept in a bundle: the current one and the one it replaced.
KEEP_VERSIONS = 2
#: Attempts of a load that keeps finding the bundle re-published under it.
LOAD_ATTEMPTS = 50

_VERSION = re.compile(r"^v-\d{8}T\d{12}-[0-9a-f]{8}$")
_MANIFEST_TMP = re.compile(r"^\.manifest\.json\.tmp-\d+-[0-9a-f]+$")


class BundleError(ValueError):
    """A bundle is missing, incomplete, altered or of an unsupported format."""


class _Changed(Exception):
    """The bundle was re-published while it was being read: start over."""


def _version() -> str:
    from recogan import __version__

    return __version__


def manifest_digest(manifest: dict) -> str:
    """The checksum of a manifest: sha256 of its canonical JSON without the checksum field."""
    body = {k: v for k, v in manifest.items() if k != CHECKSUM_FIELD}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return _fs.sha256_bytes(text.encode())


def is_bundle(path: str | Path) -> bool:
    """Whether ``path`` holds a recogan bundle (its manifest names our format; files are not
    verified, so a damaged bundle still counts as one: a save may replace it)."""
    try:
        m = json.loads((Path(path) / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(m, dict) and m.get("format") == FORMAT


def _own_entry(name: str) -> bool:
    """Entries inside a bundle directory that a save may remove: interrupted manifest writes."""
    return bool(_MANIFEST_TMP.match(name))


# ---------------------------------------------------------------------- writing
def save_model(model, path: str | Path, *, force: bool = False) -> Path:
    """Write ``model`` (a fitted :class:`recogan.base.Model`) as a bundle at ``path``.

    ``path`` must be absent, empty or a bundle; anything else raises
    :class:`~recogan._fs.OutputDirError` unless ``force`` (then it is replaced).
    """
    model._check_fitted()
    path = _fs.as_path(path, "bundle path")
    what = "a recogan model bundle"
    _fs.check_output_dir(path, recognise=is_bundle, what=what, force=force, allow=_own_entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    version = "v-" + _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    version += f"-{uuid.uuid4().hex[:8]}"
    with _fs.building(_fs.aux_name(path, "tmp")) as tmp:
        files = _write_payload(model, tmp / version)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
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
        manifest[CHECKSUM_FIELD] = manifest_digest(manifest)
        data = json.dumps(manifest, indent=2, sort_keys=True).encode()
        (tmp / MANIFEST).write_bytes(data)
        _fs.fsync_tree(tmp)
        with _fs.locked(path.parent):
            _recover(path)
            # re-check under the lock: another process may have put something there meanwhile
            state = _fs.check_output_dir(
                path, recognise=is_bundle, what=what, force=force, allow=_own_entry
            )
            previous = _current_version(path) if state == "ours" else None
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
    if hasattr(model, "write_files"):
        model.write_files(vdir)
    return {
        p.relative_to(vdir).as_posix(): {"sha256": _fs.sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(vdir.rglob("*"))
        if p.is_file()
    }


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
        if _own_entry(p.name):
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
        extra = [e for e in extra if not _own_entry(e)]
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
    from recogan.base import MODEL_REGISTRY, model_class

    if verify:
        _check_listing(b)
    m, mpath = b.manifest, b.path / MANIFEST
    spec, ds = m["model"], m["dataset"]
    try:
        cls = model_class(str(spec.get("class")))
    except ValueError:
        raise BundleError(
            f"{mpath}: names model class {spec.get('class')!r}, which this recogan does not "
            f"know (known: {', '.join(MODEL_REGISTRY)})"
        ) from None
    try:
        model = cls(spec.get("config") or {})
    except (TypeError, ValueError) as e:
        raise BundleError(f"{mpath}: its settings do not fit {cls.__name__}: {e}") from e

    done = set()

    def read(rel, how):
        done.add(rel)
        return _parse(b, rel, _read_file(b, rel, verify=verify), how)

    files = m["files"]
    model.users_ = read("users.parquet", _ids)
    model.items_ = read("items.parquet", _ids)
    model.n_users_, model.n_items_ = len(model.users_), len(model.items_)
    if (model.n_users_, model.n_items_) != (ds.get("n_users"), ds.get("n_items")):
        raise BundleError(f"{b.path}: id files disagree with the manifest's dataset sizes")
    model.catalog_ = (
        read("catalog.parquet", pd.read_parquet) if "catalog.parquet" in files else None
    )
    arrays = {
        PurePosixPath(rel).stem: read(rel, _npy)
        for rel in sorted(files)
        if rel.startswith("arrays/") and rel.endswith(".npy")
    }
    try:
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
        if "weights.pt" in files:
            import torch

            states = read(
                "weights.pt",
                lambda f: torch.load(f, map_location="cpu", weights_only=True),
            )
            model.set_torch_state(states, device=device)
        if hasattr(model, "read_files"):
            if verify:  # files the model reads itself (an index) are checked before it does
                for rel in sorted(set(files) - done):
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
            f"{b.path}: its files do not fit model class {cls.__name__} ({what}); the bundle "
            "is damaged or its manifest names the wrong class"
        ) from e
    model.manifest_ = m
    model.manifest_sha256_ = b.manifest_sha256
    return model
