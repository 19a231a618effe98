"""What a GAN bundle holds beyond its manifest (:class:`Persistence`, part of
:class:`~recogan.gan.model.GANRecommender`): learned arrays, torch weights, the item index and
the fitted feature pipeline (numbers and strings only, never pickle)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recogan._sparse import csr_from_state, csr_state
from recogan.features import ItemFeatures
from recogan.gan.config import GANConfig
from recogan.gan.train import resolve_device
from recogan.index import ItemIndex


class Persistence:
    """The bundle hooks of the contract (``state_arrays``, ``torch_state``, ``write_files``
    and their setters)."""

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "F": self.F_,
            "logpop": self.logpop_,
            "user_hist": self.user_hist_,
            "user_hist_t": self.user_hist_t_,
            "best_epoch": np.array([self.best_epoch_], dtype=np.int64),
        }
        graph = getattr(self, "copurchase_", None)
        if graph is not None:
            arrays.update(csr_state("copurchase", graph))
        arrays.update(self.repeat_state())
        return arrays

    def set_state_arrays(self, arrays) -> None:
        self.F_ = arrays["F"].astype(np.float32)
        self.logpop_ = arrays["logpop"].astype(np.float32)
        self.user_hist_ = arrays["user_hist"].astype(np.int64)
        self.user_hist_t_ = arrays["user_hist_t"].astype(np.int64)
        self.best_epoch_ = int(arrays["best_epoch"][0])
        self.history_ = []
        # bundles saved before the co-purchase re-rank (or with it off) have none; the graph
        # keeps the fit's catalogue (products placed later have no edges)
        has = "copurchase_indptr" in arrays
        self.copurchase_ = csr_from_state(arrays, "copurchase") if has else None
        self.set_repeat_state(arrays)

    # the index travels in the bundle, hashed and verified with the other files
    def write_files(self, directory) -> None:
        self.index_.save(directory, "index")
        _write_features(self.features_, directory)

    def read_files(self, directory) -> None:
        device = "cpu" if self.device_ == "cpu" else "auto"
        self.index_ = ItemIndex.load(directory, "index", device=device)
        self.features_ = _read_features(directory)

    def torch_state(self) -> dict[str, dict]:
        n = self.nets_
        return {
            k: {p: v.detach().cpu() for p, v in m.state_dict().items()}
            for k, m in (("tower", n.tower), ("G", n.G), ("D", n.D))
        }

    def set_torch_state(self, states, device: str = "cpu") -> None:
        self.device_ = resolve_device(device)
        self._build(self.config.part(GANConfig))
        for k in ("tower", "G", "D"):
            getattr(self.nets_, k).load_state_dict(states[k])
            getattr(self.nets_, k).eval()
        self._refresh()


_FEATURES = "features"


def _write_features(features, directory) -> None:
    """The fitted feature pipeline as ``features.json`` and ``features.<array>.npy`` (numbers
    and strings only, never pickle)."""
    if features is None:
        return
    meta, arrays = features.content_state()
    directory = Path(directory)
    meta["arrays"] = sorted(arrays)
    (directory / f"{_FEATURES}.json").write_text(json.dumps(meta, sort_keys=True))
    for name, arr in arrays.items():
        np.save(directory / f"{_FEATURES}.{name}.npy", np.asarray(arr), allow_pickle=False)


def _read_features(directory):
    directory = Path(directory)
    path = directory / f"{_FEATURES}.json"
    if not path.is_file():  # a bundle of an earlier recogan: it cannot place new products
        return None
    meta = json.loads(path.read_text())
    arrays = {
        name: np.load(directory / f"{_FEATURES}.{name}.npy", allow_pickle=False)
        for name in meta.pop("arrays")
    }
    return ItemFeatures.from_content_state(meta, arrays)
