"""What an evaluation keeps on disk as it goes, so that an interrupted run can go on.

A state folder (``recogan evaluate`` uses ``--out``/``tuning``) holds:

- ``recogan-state.json``: the marker that says this program made the folder (a folder with
  other content and no marker is never written into);
- ``studies.sqlite3``: the Optuna studies of the halving tuner, one per model, named from
  the arguments that decide its result (:func:`recogan.evaluate._halving.study_name`); every
  fold fit is stored the moment it finishes;
- ``models/<name>/``: each model's finished results (its per-user scores, lists' popularity,
  curves, tuning summary and timing), written as soon as the model is done. ``result.json``
  is written last and names the arguments (a key) it was computed for: a re-run with the
  same arguments reads the model instead of recomputing it, a run with other arguments
  recomputes and replaces it.

Only JSON, parquet and ``.npy`` (read without pickle) are written; nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from recogan._fs import OutputDirError, atomic_path, atomic_write_json

log = logging.getLogger(__name__)

MARKER = "recogan-state.json"
FORMAT = "recogan-evaluate-state"
VERSION = 1
#: Parts of a model's results kept as parquet (when the model has them).
_FRAMES = ("per_user", "tradeoff", "curve", "generation")


def is_state_dir(path) -> bool:
    """Whether ``path`` is a state folder this program made."""
    try:
        doc = json.loads((Path(path) / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == FORMAT


def check_state_dir(path, force: bool = False) -> None:
    """Refuse (``OutputDirError``) a state folder path that holds something else: a file,
    or a folder with content and no marker (unless ``force``)."""
    path = Path(path)
    problem = None
    if path.exists() and not path.is_dir():
        problem = "is a file"
    elif path.is_dir() and any(path.iterdir()) and not is_state_dir(path):
        problem = "holds files that are not an evaluation's tuning state"
    if problem is None:
        return
    if not force or path.is_file():
        raise OutputDirError(
            f"{path} {problem}; refusing to keep the tuning state there (choose another "
            "--out, or move it away)" + ("" if path.is_file() else ", or pass --force")
        )
    log.warning("%s %s: keeping the tuning state there anyway (--force)", path, problem)


def _jsonable(obj):
    def default(o):
        if hasattr(o, "tolist"):
            return o.tolist()
        return str(o)

    return json.loads(json.dumps(obj, default=default))


class RunState:
    """The state folder of one evaluation (created with its marker when missing)."""

    def __init__(self, root, *, force: bool = False) -> None:
        self.root = Path(root)
        check_state_dir(self.root, force)
        self.root.mkdir(parents=True, exist_ok=True)
        if not is_state_dir(self.root):
            atomic_write_json(self.root / MARKER, {"format": FORMAT, "version": VERSION})
        self.url = f"sqlite:///{(self.root / 'studies.sqlite3').resolve()}"
        self._storage = None

    @property
    def storage(self):
        """The optuna storage of the studies (opened once)."""
        if self._storage is None:
            self._storage = optuna.storages.RDBStorage(self.url)
        return self._storage

    def _dir(self, name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        return self.root / "models" / safe

    @staticmethod
    def split_key(split) -> str:
        """What identifies a split: the fingerprints of every validation window's training
        and validation parts and of the test part (so two runs whose windows differ, by
        share, by days, spread or given as a Split, never share results)."""
        h = hashlib.sha256()
        for part in (*(p for fold in split.folds for p in fold), split.test):
            h.update(part.fingerprint().encode())
        return h.hexdigest()

    @staticmethod
    def model_key(name, data, proto, ks, run: dict, given, split: str | None = None) -> str:
        """What a model's results depend on: the data, the protocol (with its windows:
        ``split``, a :meth:`split_key`), K, the tuning settings, the seed, the diversity
        levels and any given settings (not ``jobs``)."""
        doc = {
            "model": name, "data": data.fingerprint(), "protocol": proto.to_dict(),
            "ks": list(ks), "given": given, "version": VERSION,
            **{k: v for k, v in run.items() if k != "jobs"},
        }  # fmt: skip
        if split is not None:
            doc["split"] = split
        return hashlib.sha256(json.dumps(_jsonable(doc), sort_keys=True).encode()).hexdigest()

    def save_model(self, name: str, key: str, got: dict) -> None:
        d = self._dir(name)
        d.mkdir(parents=True, exist_ok=True)
        (d / "result.json").unlink(missing_ok=True)  # what follows belongs to the new key
        for part in _FRAMES:
            if got.get(part) is not None:
                with atomic_path(d / f"{part}.parquet") as tmp:
                    got[part].to_parquet(tmp, index=False)
            else:
                (d / f"{part}.parquet").unlink(missing_ok=True)
        with atomic_path(d / "rec_pop.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, np.asarray(got["rec_pop"]), allow_pickle=False)
        tuning = dict(got["tuning"])
        table = tuning.pop("table")
        doc = {
            "key": key,
            "row": got["row"],
            "tuning": tuning,
            "table": table.to_dict(orient="records"),
            "timing": got["timing"],
        }
        atomic_write_json(d / "result.json", _jsonable(doc))

    def load_model(self, name: str, key: str) -> dict | None:
        """The model's results saved for ``key`` (None when missing or for other arguments)."""
        d = self._dir(name)
        try:
            doc = json.loads((d / "result.json").read_text())
        except (OSError, ValueError):
            return None
        if doc.get("key") != key:
            return None
        try:
            got = {
                part: pd.read_parquet(d / f"{part}.parquet")
                for part in _FRAMES
                if (d / f"{part}.parquet").exists()
            }
            got["rec_pop"] = np.load(d / "rec_pop.npy", allow_pickle=False)
        except (OSError, ValueError) as e:
            log.warning("%s: cannot read the saved results (%s); computing again", d, e)
            return None
        if "per_user" not in got:
            return None
        got["row"] = doc["row"]
        got["tuning"] = {**doc["tuning"], "table": pd.DataFrame(doc["table"])}
        got["timing"] = doc["timing"]
        return got
