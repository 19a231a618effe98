# ruff: noqa: E741  (D, I: faiss's names for scores and ids)
"""``ItemIndex``: top-k inner-product search over unit item vectors, with per-query exclusion,
an allowed-item subset, add/remove, and save/load.

Search over-fetches from the underlying index (k + the largest exclusion in the batch, scaled up
for an allowed subset), filters, and falls back to exact scoring for the rows that still come up
short, so exactly ``k`` results come back whenever ``k`` items are eligible. Rows are padded with
item ``-1`` and score ``-inf`` otherwise.

Exact search on CUDA (and wherever ``exact_backend="torch"``) needs none of that: the torch
backend (:class:`~recogan.index._torch.TorchExact`) scores chunks of queries on the device and
sets excluded and disallowed items to ``-inf`` there before its top-k.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from recogan._threads import n_cores
from recogan._topk import top_k
from recogan.index import _faiss
from recogan.index._ops import RWLock, pairs, rows_of
from recogan.index._torch import TorchExact, cuda_available

log = logging.getLogger(__name__)

KINDS = ("auto", "exact", "ivf", "hnsw")
DEVICES = ("auto", "cpu", "cuda")
EXACT_BACKENDS = ("auto", "torch", "faiss")
#: Item ids index dense masks, so they must be small non-negative integers.
MAX_ID = 2**31 - 1
FORMAT_VERSION = 1
#: Scores held at once by exact scoring (float32 entries: 128 MB).
EXACT_CHUNK = 1 << 25


@dataclass
class IndexConfig:
    #: ``exact`` (IndexFlatIP), ``ivf`` (``IVF{nlist},Flat``), ``hnsw`` (``HNSW{M}``) or
    #: ``auto``: exact below ``exact_below`` items (and always on a GPU), IVF above.
    kind: str = "auto"
    #: Catalog size from which ``auto`` leaves exact search.
    exact_below: int = 100_000
    #: IVF lists; None: about 4·sqrt(n_items) (FAISS's guidance).
    nlist: int | None = None
    #: IVF lists visited per query; None: about nlist/8, at least 16 (>= 0.95 recall@10 in tests).
    nprobe: int | None = None
    #: HNSW links per node.
    M: int = 32
    #: HNSW candidate list size at search time (recall/speed knob).
    ef_search: int = 128
    #: HNSW candidate list size while building.
    ef_construction: int = 80
    #: ``auto`` (the GPU when torch or faiss sees one, else the CPU), ``cpu`` or ``cuda``.
    device: str = "auto"
    #: Who runs exact search: ``auto`` (torch matmul + top-k on CUDA, with exclusions and
    #: allow-lists applied on the device; numpy/faiss on the CPU), ``torch`` (torch on the
    #: index's device, the CPU included: how tests and benchmarks run the GPU path's code
    #: without a GPU) or ``faiss`` (faiss's GPU index on a GPU where faiss-gpu is installed,
    #: over-fetching for exclusions; numpy/faiss on the CPU).
    exact_backend: str = "auto"
    #: Bytes of float32 scores the torch path holds per chunk of queries (bounds its memory).
    torch_chunk_bytes: int = 1 << 28
    #: faiss OpenMP threads for batch searches (and building); None: all cores. OpenMP thread
    #: counts are per calling thread, so every search sets its own.
    threads: int | None = None
    #: Batches smaller than this search on one thread: OpenMP start-up and barriers cost more
    #: than they save for a few queries, and concurrent requests already use the cores.
    single_thread_below: int = 16
    #: Seed of IVF's k-means (same seed, same index).
    seed: int = 0
    #: Allowed subsets up to this size are scored exactly instead of searched.
    small_subset: int = 4096
    #: Most extra results fetched from the index before falling back to exact scoring.
    max_overfetch: int = 2048
    #: Rows needing this many results or more (k + exclusions) are scored exactly on the CPU.
    exact_overfetch: int = 256

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"index kind must be one of {KINDS}, not {self.kind!r}")
        if self.device not in DEVICES:
            raise ValueError(f"index device must be one of {DEVICES}, not {self.device!r}")
        if self.exact_backend not in EXACT_BACKENDS:
            raise ValueError(
                f"index exact_backend must be one of {EXACT_BACKENDS}, not {self.exact_backend!r}"
            )
        if not isinstance(self.torch_chunk_bytes, int) or self.torch_chunk_bytes <= 0:
            raise ValueError(
                f"index torch_chunk_bytes must be a positive int, not {self.torch_chunk_bytes!r}"
            )


class ItemIndex:
    """Inner-product index over unit item vectors, labelled by item ids (small ints).

    >>> index = ItemIndex(kind="hnsw").build(vectors)          # ids default to 0..n-1
    >>> D, I = index.search(xq, k=10, exclude=seen_rows, allowed=in_stock)

    Thread-safe: searches run concurrently (the faiss GPU copy, which is not thread-safe, under
    a lock); ``add``/``remove`` wait for running searches and block new ones.
    HNSW cannot delete vectors: removed items are tombstoned (filtered out at search time, and
    counted in the over-fetch) until :meth:`compact` rebuilds the graph.
    """

    def __init__(self, config: IndexConfig | dict | None = None, **kwargs) -> None:
        if config is None:
            config = IndexConfig()
        elif isinstance(config, dict):
            config = IndexConfig(**config)
        self.config = replace(config, **kwargs) if kwargs else config
        self._rw = RWLock()
        self._gpu_lock = threading.Lock()

    def __repr__(self) -> str:
        if not hasattr(self, "kind_"):
            return f"ItemIndex({self.config.kind}, unbuilt)"
        return f"ItemIndex({self.kind_}, n={self.ntotal}, d={self.d_}, backend={self.backend_})"

    # ------------------------------------------------------------------ building
    def build(self, vectors: np.ndarray, ids: np.ndarray | None = None) -> ItemIndex:
        """Index ``vectors`` (``(n, d)``; rows should be unit length) labelled ``ids``."""
        xb, ids = self._check_vectors(vectors, ids, first=True)
        cfg = self.config
        _faiss.set_threads(cfg.threads or n_cores())
        with self._rw.write():
            self.d_ = xb.shape[1]
            self.kind_, self.backend_, self.torch_device_ = self._placement(len(xb))
            self.nlist_ = cfg.nlist or _faiss.default_nlist(len(xb))
            self.nprobe_ = cfg.nprobe or _faiss.default_nprobe(self.nlist_)
            if self.kind_ == "ivf" and self.nlist_ > len(xb):
                raise ValueError(f"nlist={self.nlist_} exceeds the {len(xb)} vectors to index")
            self._rebuild(xb, ids)
        return self

    def _placement(self, n: int, kind: str | None = None) -> tuple[str, str, str | None]:
        """``(kind, backend, torch device)`` for ``n`` items: backend ``torch`` (exact search
        by :class:`TorchExact` on the torch device), ``faiss-gpu`` or ``cpu``."""
        cfg = self.config
        faiss_gpu = cuda = False
        if cfg.device != "cpu":
            faiss_gpu, cuda = _faiss.gpu_count() > 0, cuda_available()
            if cfg.device == "cuda" and not (faiss_gpu or cuda):
                raise RuntimeError("device='cuda' but neither faiss nor torch sees a CUDA GPU")
        on_gpu = faiss_gpu or cuda
        kind = kind or cfg.kind
        if kind == "auto":
            # brute force on a GPU stays fast to millions of items
            kind = "exact" if on_gpu or n < cfg.exact_below else "ivf"
        if kind == "exact":
            if cuda and cfg.exact_backend != "faiss":
                return kind, "torch", "cuda"
            if faiss_gpu:
                return kind, "faiss-gpu", None
            if cfg.exact_backend == "torch":
                return kind, "torch", "cpu"
            return kind, "cpu", None
        if kind == "ivf" and faiss_gpu:
            return kind, "faiss-gpu", None
        if on_gpu:
            log.info("no faiss GPU %s index: it stays on the CPU", kind)
        return kind, "cpu", None

    def _rebuild(self, xb: np.ndarray, ids: np.ndarray) -> None:
        """(Re)create every structure from live vectors; caller holds the write lock."""
        cfg = self.config
        self._xb, self._ids = xb, ids
        self._set_positions()
        self._dead = np.zeros(len(self._pos), dtype=bool)
        self.n_dead_ = 0
        index = _faiss.build_cpu(
            self.kind_,
            self.d_,
            nlist=self.nlist_,
            M=cfg.M,
            ef_construction=cfg.ef_construction,
            seed=cfg.seed,
        )
        if self.kind_ == "ivf":
            _faiss.train_ivf(index, xb, cfg.seed)
        index.add_with_ids(xb, ids)
        _faiss.set_search_params(index, self.kind_, nprobe=self.nprobe_, ef_search=cfg.ef_search)
        self._cpu = index
        self._sync_device()

    def _set_positions(self) -> None:
        size = int(self._ids.max()) + 1 if len(self._ids) else 0
        size = max(size, len(getattr(self, "_pos", ())))
        self._pos = np.full(size, -1, dtype=np.int64)
        self._pos[self._ids] = np.arange(len(self._ids))

    def _sync_device(self) -> None:
        self._gpu = self._torch = None
        if self.backend_ == "faiss-gpu":
            self._gpu = _faiss.GpuCopy(self._cpu)
        elif self.backend_ == "torch":
            self._torch = TorchExact(
                self._xb, self._ids, self.torch_device_, self.config.torch_chunk_bytes
            )

    def _check_vectors(self, vectors, ids, *, first: bool):
        xb = np.ascontiguousarray(vectors, dtype=np.float32)
        if xb.ndim != 2 or xb.shape[0] == 0:
            raise ValueError(f"vectors must be a non-empty 2-D array, got shape {xb.shape}")
        if not first and xb.shape[1] != self.d_:
            raise ValueError(f"vectors have dimension {xb.shape[1]}, the index has {self.d_}")
        if not np.isfinite(xb).all():
            raise ValueError("vectors contain NaN or infinite values")
        ids = np.arange(len(xb), dtype=np.int64) if ids is None else np.asarray(ids)
        if ids.ndim != 1 or len(ids) != len(xb):
            raise ValueError(f"ids must be 1-D with one id per vector ({len(xb)}), got {ids.shape}")
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must be integers, got dtype {ids.dtype}")
        ids = ids.astype(np.int64)
        if ids.min() < 0 or ids.max() > MAX_ID:
            raise ValueError(f"ids must be in 0..{MAX_ID}, got {ids.min()}..{ids.max()}")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("ids contain duplicates")
        return xb, ids

    # ------------------------------------------------------------------ facts
    @property
    def ntotal(self) -> int:
        """Live (searchable) items."""
        return len(self._ids)

    @property
    def ids(self) -> np.ndarray:
        """Live item ids, in storage order."""
        return self._ids.copy()

    def __contains__(self, item_id) -> bool:
        return 0 <= int(item_id) < len(self._pos) and self._pos[int(item_id)] >= 0

    def live(self, ids) -> np.ndarray:
        """Whether each of ``ids`` is in the index (searchable), as a boolean array."""
        return self._lookup(np.asarray(ids, dtype=np.int64)) >= 0

    def vectors(self, ids) -> np.ndarray:
        """The stored vectors of ``ids`` (``KeyError`` for ids not in the index)."""
        ids = np.atleast_1d(np.asarray(ids, dtype=np.int64))
        pos = self._lookup(ids)
        if (pos < 0).any():
            raise KeyError(f"item id {int(ids[pos < 0][0])} is not in the index")
        return self._xb[pos]

    def _lookup(self, ids: np.ndarray) -> np.ndarray:
        ok = (ids >= 0) & (ids < len(self._pos))
        pos = np.full(ids.shape, -1, dtype=np.int64)
        pos[ok] = self._pos[ids[ok]]
        return pos

    # ------------------------------------------------------------------ mutation
    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add new items without rebuilding (HNSW: a re-added removed id triggers compact)."""
        xb, ids = self._check_vectors(vectors, ids, first=False)
        with self._rw.write():
            live = self._lookup(ids) >= 0
            if live.any():
                raise ValueError(f"item id {int(ids[live][0])} is already in the index")
            if len(self._ids) and ids.max() >= len(self._pos):
                self._pos = np.pad(
                    self._pos, (0, int(ids.max()) + 1 - len(self._pos)), constant_values=-1
                )
                self._dead = np.pad(self._dead, (0, len(self._pos) - len(self._dead)))
            revived = self._dead[ids].any()
            self._xb = np.concatenate([self._xb, xb])
            self._ids = np.concatenate([self._ids, ids])
            self._pos[ids] = np.arange(len(self._ids) - len(ids), len(self._ids))
            if revived:
                # the graph still holds the removed vector under the same id: rebuild it
                log.info("re-adding removed ids to an HNSW index: compacting")
                self._rebuild(self._xb, self._ids)
                return
            self._cpu.add_with_ids(xb, ids)
            self._sync_device()

    def remove(self, ids) -> int:
        """Remove items; unknown ids are ignored. Returns how many were removed."""
        ids = np.unique(np.atleast_1d(np.asarray(ids, dtype=np.int64)))
        with self._rw.write():
            pos = self._lookup(ids)
            ids, pos = ids[pos >= 0], pos[pos >= 0]
            if not len(ids):
                return 0
            if len(ids) == len(self._ids):
                raise ValueError("cannot remove every item from an index")
            keep = np.ones(len(self._ids), dtype=bool)
            keep[pos] = False
            self._xb, self._ids = self._xb[keep], self._ids[keep]
            self._pos[:] = -1
            self._pos[self._ids] = np.arange(len(self._ids))
            if self.kind_ == "hnsw":
                self._dead[ids] = True  # HNSW cannot delete: filtered at search time
                self.n_dead_ += len(ids)
            else:
                self._cpu.remove_ids(ids)
            self._sync_device()
            return len(ids)

    def compact(self) -> None:
        """Rebuild from the live items (drops HNSW tombstones; retrains IVF)."""
        with self._rw.write():
            self._rebuild(self._xb, self._ids)

    # ------------------------------------------------------------------ search
    def search(self, xq: np.ndarray, k: int, exclude=None, allowed=None):
        """Top-``k`` ids by inner product for each query row.

        ``exclude``: per-query ids to leave out, as a sparse matrix with one row per query
        (column = item id) or a sequence of id arrays. ``allowed``: 1-D ids; only these may be
        returned. Returns ``(D, I)``: float32 scores and int64 ids, ``(B, k)``, best first,
        padded with ``-inf`` / ``-1`` when fewer than ``k`` items are eligible.
        """
        xq = np.ascontiguousarray(np.atleast_2d(xq), dtype=np.float32)
        if not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"k must be a positive int, got {k!r}")
        _faiss.set_threads(
            1 if len(xq) < self.config.single_thread_below else self.config.threads or n_cores()
        )
        with self._rw.read():
            if xq.ndim != 2 or xq.shape[1] != self.d_:
                raise ValueError(f"queries must be (B, {self.d_}), got shape {xq.shape}")
            return self._search(xq, int(k), exclude, allowed)

    def _search(self, xq, k, exclude, allowed):
        if self._torch is not None:
            # exact on the device: exclusions and the allow-list applied there, no over-fetch
            return self._torch.search(xq, k, exclude, allowed)
        B = len(xq)
        M = len(self._pos)
        ok = None  # eligible ids (live and allowed) as a mask over the id space, when needed
        n_ok = self.ntotal
        if allowed is not None:
            allowed = np.unique(np.asarray(allowed, dtype=np.int64).ravel())
            allowed = allowed[self._lookup(allowed) >= 0]
            if len(allowed) <= max(self.config.small_subset, k):
                return self._exact(xq, k, exclude, allowed)
            ok = np.zeros(M, dtype=bool)
            ok[allowed] = True
            n_ok = len(allowed)
        if (
            self.kind_ == "exact"
            and self.backend_ == "cpu"
            and B >= self.config.single_thread_below
        ):
            # batches: a BLAS matmul with masking and argpartition measured about twice as fast
            # as IndexFlatIP's search here, and needs no over-fetch for exclusions
            return self._exact(xq, k, exclude, allowed)
        rows, cols = pairs(exclude, B)
        keep = (cols >= 0) & (cols < M)
        rows, cols = rows[keep], cols[keep]
        keep = self._pos[cols] >= 0 if ok is None else ok[cols]
        rows, cols = rows[keep], cols[keep]
        n_excl = np.bincount(rows, minlength=B)
        n_avail = n_ok - n_excl
        # results to fetch per row: k + what filtering may drop; rows are grouped into
        # power-of-two buckets so one long history does not make the whole batch fetch more
        need = k + np.minimum(n_excl + self.n_dead_, self.config.max_overfetch)
        if ok is not None:
            need = np.ceil(need * (self.ntotal / n_ok) * 1.2).astype(np.int64)
        cap = min(self.ntotal + self.n_dead_, k + self.config.max_overfetch)
        bucket = np.minimum(2 ** np.ceil(np.log2(np.maximum(need, 1))).astype(np.int64), cap)
        keys = np.sort(rows * M + cols) if len(rows) else None
        Dk, Ik, found = self._fetch(xq, k, bucket, keys, ok, exclude, allowed)
        short = np.flatnonzero(found < np.minimum(k, n_avail))
        if len(short):
            sub_excl = rows_of(exclude, short)
            D2, I2 = self._exact(xq[short], k, sub_excl, allowed)
            Dk[short], Ik[short] = D2, I2
        return Dk, Ik

    def _fetch(self, xq, k, bucket, keys, ok, exclude, allowed):
        """Search each group of rows with its over-fetch ``bucket`` and keep the first ``k``
        eligible results: ``(D, I, found)``, ``found`` counting them per row. ``keys``: the
        sorted ``row * M + id`` exclusion pairs; ``ok``: the eligible-id mask, if any."""
        B, M = len(xq), len(self._pos)
        Dk = np.full((B, k), -np.inf, dtype=np.float32)
        Ik = np.full((B, k), -1, dtype=np.int64)
        found = np.zeros(B, dtype=np.int64)
        for k1 in np.unique(bucket).tolist():
            r = np.flatnonzero(bucket == k1)
            if self.backend_ == "cpu" and k1 >= self.config.exact_overfetch:
                # long exclusion lists: exact CPU search is faster as a masked matmul than with
                # a faiss heap of k1 entries, and approximate search is poor that deep
                Dk[r], Ik[r] = self._exact(xq[r], k, rows_of(exclude, r), allowed)
                found[r] = k
                continue
            D, I = self._raw(xq[r], int(k1))
            valid = I >= 0
            Ic = np.where(valid, I, 0)
            valid &= self._pos[Ic] >= 0  # removed ids (HNSW tombstones)
            if ok is not None:
                valid &= ok[Ic]
            if keys is not None:
                q = r[:, None] * M + Ic
                at = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
                valid &= keys[at] != q
            # first k valid per row, order kept (stable sort puts valid columns first)
            order = np.argsort(~valid, axis=1, kind="stable")[:, :k]
            vk = np.take_along_axis(valid, order, 1)
            w = order.shape[1]
            Dk[r, :w] = np.where(vk, np.take_along_axis(D, order, 1), -np.inf)
            Ik[r, :w] = np.where(vk, np.take_along_axis(I, order, 1), -1)
            found[r] = vk.sum(1)
        return Dk, Ik, found

    def _raw(self, xq: np.ndarray, k: int):
        if self._gpu is not None:
            with self._gpu_lock:
                D, I = self._gpu.search(xq, k)
            return D, I
        return self._cpu.search(xq, k)

    def _exact(self, xq, k, exclude, allowed):
        """Exact top-k over live items (or the ``allowed`` live ids), with exclusion."""
        if allowed is None:
            cand_ids, cand_pos = self._ids, np.arange(len(self._ids))
        else:
            cand_ids, cand_pos = allowed, self._lookup(allowed)
        B = len(xq)
        if len(cand_ids) == 0:
            return np.full((B, k), -np.inf, np.float32), np.full((B, k), -1, np.int64)
        xb = self._xb if allowed is None else self._xb[cand_pos]
        step = max(1, EXACT_CHUNK // len(cand_ids))  # bounded memory for the score block
        if B > step:
            parts = [
                self._exact(
                    xq[s : s + step], k, rows_of(exclude, np.arange(s, min(B, s + step))), allowed
                )
                for s in range(0, B, step)
            ]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        scores = xq @ xb.T  # (B, C)
        rows, cols = pairs(exclude, B)
        if len(rows):
            if allowed is None:
                pos = self._lookup(cols)
                col = pos  # candidate columns are storage positions
            else:
                at = np.minimum(np.searchsorted(cand_ids, cols), len(cand_ids) - 1)
                col = np.where(cand_ids[at] == cols, at, -1)
            hit = col >= 0
            scores[rows[hit], col[hit]] = -np.inf
        I, D = top_k(scores, k, cand_ids, ties_by_id=True)
        return D, I

    # ------------------------------------------------------------------ persistence
    def save(self, directory, name: str = "index") -> list[Path]:
        """Write ``name.json`` (settings), ``name.vectors.npy`` / ``name.ids.npy`` (live items)
        and, for IVF/HNSW, ``name.faiss`` (faiss's own format, not pickle) so that loading does
        not re-train or re-build the graph. Returns the files written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with self._rw.read():
            meta = {
                "format_version": FORMAT_VERSION,
                "kind": self.kind_,
                "d": self.d_,
                "ntotal": self.ntotal,
                "nlist": self.nlist_,
                "nprobe": self.nprobe_,
                "config": asdict(self.config),
            }
            files = [directory / f"{name}.{ext}" for ext in ("json", "vectors.npy", "ids.npy")]
            files[0].write_text(json.dumps(meta, indent=2, sort_keys=True))
            np.save(files[1], self._xb, allow_pickle=False)
            np.save(files[2], self._ids, allow_pickle=False)
            if self.kind_ != "exact":
                files.append(directory / f"{name}.faiss")
                files.append(directory / f"{name}.dead.npy")
                _faiss.write(self._cpu, files[-2])
                np.save(files[-1], np.flatnonzero(self._dead).astype(np.int64), allow_pickle=False)
        return files

    @classmethod
    def load(cls, directory, name: str = "index", **overrides) -> ItemIndex:
        """Read what :meth:`save` wrote; ``overrides`` replace config fields (``device``,
        ``threads``, ``nprobe``, ``ef_search``...)."""
        directory = Path(directory)
        path = directory / f"{name}.json"
        if not path.is_file():
            raise FileNotFoundError(f"{directory}: no index here (missing {path.name})")
        meta = json.loads(path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported index format {meta.get('format_version')}")
        config = replace(IndexConfig(**meta["config"]), kind=meta["kind"], **overrides)
        self = cls(config)
        xb = np.load(directory / f"{name}.vectors.npy", allow_pickle=False)
        ids = np.load(directory / f"{name}.ids.npy", allow_pickle=False)
        if xb.shape != (meta["ntotal"], meta["d"]) or ids.shape != (meta["ntotal"],):
            raise ValueError(f"{directory}: index arrays disagree with {path.name}")
        if meta["kind"] == "exact":
            return self.build(xb, ids)
        self.d_, self.kind_ = meta["d"], meta["kind"]
        self.nlist_ = meta["nlist"]
        self.nprobe_ = config.nprobe or meta["nprobe"]
        _, self.backend_, self.torch_device_ = self._placement(len(xb), self.kind_)
        self._xb, self._ids = xb.astype(np.float32), ids.astype(np.int64)
        self._set_positions()
        dead = np.load(directory / f"{name}.dead.npy", allow_pickle=False)
        size = max(len(self._pos), int(dead.max()) + 1 if len(dead) else 0)
        self._pos = np.pad(self._pos, (0, size - len(self._pos)), constant_values=-1)
        self._dead = np.zeros(size, dtype=bool)
        self._dead[dead] = True
        self.n_dead_ = len(dead)
        self._cpu = _faiss.read(directory / f"{name}.faiss")
        if self._cpu.ntotal != self.ntotal + self.n_dead_ or self._cpu.d != self.d_:
            raise ValueError(f"{directory}: {name}.faiss disagrees with {path.name}")
        _faiss.set_search_params(
            self._cpu, self.kind_, nprobe=self.nprobe_, ef_search=config.ef_search
        )
        self._sync_device()
        return self
