"""iALS (Hu, Koren & Volinsky, ICDM 2008): implicit-feedback matrix factorisation.

Minimises Σ_{u,i} c_ui (p_ui - x_uᵀ y_i)² + λ (‖X‖² + ‖Y‖²) with p_ui = 1 for a purchase and
confidence c_ui = 1 + α for purchases, 1 otherwise. Each half-step solves every user's (item's)
least-squares system with a few conjugate-gradient steps, warm-started, for all rows at once:
the matrix-vector product needs only the non-zeros, so one step is two sparse products
(Takács et al. 2011; the scheme the `implicit` package uses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recogan._config import require
from recogan.base import Model


@dataclass
class IALSConfig:
    #: Latent dimension of user and item factors.
    factors: int = 64
    #: L2 penalty λ on both factor matrices.
    reg: float = 1.0
    #: Confidence of an observed purchase: c = 1 + alpha.
    alpha: float = 1.0
    #: Alternating (user step, item step) sweeps.
    iterations: int = 10
    #: Conjugate-gradient steps per half-sweep (warm-started, so 3 is enough in practice).
    cg_steps: int = 3
    #: Seed of the factor initialisation.
    seed: int = 0

    def __post_init__(self) -> None:
        require(self, "factors", ge=1)
        require(self, "reg", ge=0)
        require(self, "alpha", ge=0)
        require(self, "iterations", ge=0)
        require(self, "cg_steps", ge=1)
        require(self, "seed", ge=0)


#: Rows per chunk of the conjugate-gradient matrix-vector product.
_ROWS = 512


def _cg_solve(X0: np.ndarray, C: sp.csr_matrix, Y: np.ndarray, reg: float, steps: int):
    """Rows x_u of ``X0`` moved towards the solutions of
    (YᵀY + λI + Yᵀ (C_u - I) Y) x_u = Yᵀ C_u p_u, where C (rows × items) holds α on the
    observed cells (so c - 1 = α there and p = 1)."""
    YtY = Y.T @ Y + reg * np.eye(Y.shape[1])
    counts = np.diff(C.indptr)
    cols, a = C.indices, C.data

    def matvec(P: np.ndarray) -> np.ndarray:
        # Σ_i α y_i (y_iᵀ p_u) over the user's items, plus (YᵀY + λI) p_u. The per-non-zero
        # dot products go in chunks of rows (memory traffic, not arithmetic, is the cost);
        # np.take and np.repeat over CSR-ordered rows are several times faster than fancy
        # indexing here.
        d = np.empty(len(cols))
        for r0 in range(0, C.shape[0], _ROWS):
            r1 = min(r0 + _ROWS, C.shape[0])
            s, e = C.indptr[r0], C.indptr[r1]
            Yg = np.take(Y, cols[s:e], axis=0)
            Pg = np.repeat(P[r0:r1], counts[r0:r1], axis=0)
            d[s:e] = np.einsum("nf,nf->n", Yg, Pg)
        d *= a
        W = sp.csr_matrix((d, C.indices, C.indptr), shape=C.shape)
        return P @ YtY + W @ Y

    Cb = sp.csr_matrix((1.0 + a, C.indices, C.indptr), shape=C.shape)
    X = X0.astype(np.float64, copy=True)
    R = Cb @ Y - matvec(X)
    Pd = R.copy()
    rs = np.einsum("nf,nf->n", R, R)
    for _ in range(steps):
        Ap = matvec(Pd)
        pAp = np.einsum("nf,nf->n", Pd, Ap)
        step = np.divide(rs, pAp, out=np.zeros_like(rs), where=pAp > 1e-20)
        X += step[:, None] * Pd
        R -= step[:, None] * Ap
        rs_new = np.einsum("nf,nf->n", R, R)
        beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 1e-20)
        Pd = R + beta[:, None] * Pd
        rs = rs_new
    return X


class IALS(Model):
    """Implicit ALS with a compact numpy/scipy conjugate-gradient solver (seeded, CPU)."""

    name = "ials"
    Config = IALSConfig

    @classmethod
    def search_space(cls) -> dict[str, list]:
        # factors chose 32, the old bottom, with iterations held at 10 (issue 23): both widen
        return {
            "factors": [16, 32, 64, 128, 256],
            "reg": [0.1, 1.0, 10.0, 50.0, 200.0],
            "alpha": [0.5, 1.0, 2.0, 5.0, 10.0],
            "iterations": [10, 20, 30],
        }

    def _fit(self, train, valid) -> None:
        cfg = self.config
        if cfg.factors <= 0 or cfg.iterations < 0 or cfg.cg_steps <= 0:
            raise ValueError(f"iALS needs factors > 0, iterations >= 0, cg_steps > 0: {cfg}")
        if cfg.reg < 0 or cfg.alpha < 0:
            raise ValueError(f"iALS reg and alpha must be >= 0: {cfg}")
        rng = np.random.default_rng(cfg.seed)
        Cu = sp.csr_matrix(self.seen_, dtype=np.float64) * cfg.alpha
        Ci = Cu.T.tocsr()
        scale = 0.01
        U = rng.normal(0, scale, (self.n_users_, cfg.factors))
        V = rng.normal(0, scale, (self.n_items_, cfg.factors))
        for _ in range(cfg.iterations):
            U = _cg_solve(U, Cu, V, cfg.reg, cfg.cg_steps)
            V = _cg_solve(V, Ci, U, cfg.reg, cfg.cg_steps)
        self.user_factors_ = U.astype(np.float32)
        self.item_factors_ = V.astype(np.float32)

    def fold_in(self, X: sp.csr_matrix) -> np.ndarray:
        """User factors for new histories (rows of X): the exact least-squares user step."""
        cfg = self.config
        V = self.item_factors_.astype(np.float64)
        G = V.T @ V + cfg.reg * np.eye(cfg.factors)
        X = sp.csr_matrix(X)
        out = np.zeros((X.shape[0], cfg.factors), dtype=np.float64)
        for r in range(X.shape[0]):
            items = X.indices[X.indptr[r] : X.indptr[r + 1]]
            if items.size == 0:
                continue
            Vh = V[items]
            A = G + cfg.alpha * (Vh.T @ Vh)
            out[r] = np.linalg.solve(A, (1.0 + cfg.alpha) * Vh.sum(0))
        return out.astype(np.float32)

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return self.user_factors_[user_idx] @ self.item_factors_.T

    def score_histories(self, X, times=None) -> np.ndarray:
        return self.fold_in(X) @ self.item_factors_.T

    def item_vectors(self) -> np.ndarray:
        """L2-normalised item factors ``(n_items, factors)``."""
        self._check_fitted()
        V = self.item_factors_
        return V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def set_state_arrays(self, arrays) -> None:
        self.user_factors_ = arrays["user_factors"].astype(np.float32)
        self.item_factors_ = arrays["item_factors"].astype(np.float32)
