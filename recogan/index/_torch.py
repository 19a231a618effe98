# ruff: noqa: E741  (D, I: faiss's names for scores and ids)
"""Exact inner-product search with torch (matmul + top-k): the GPU path when CUDA torch is
present but faiss has no GPU support. Works on any torch device (tests run it on CPU)."""

from __future__ import annotations

import numpy as np


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


class TorchExact:
    """Item vectors and their ids as tensors on ``device``; rebuilt after every mutation."""

    def __init__(self, vectors: np.ndarray, ids: np.ndarray, device: str = "cuda") -> None:
        import torch

        self.device = torch.device(device)
        self.xb = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(self.device)
        self.ids = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)).to(self.device)

    @property
    def ntotal(self) -> int:
        return int(self.xb.shape[0])

    def search(self, xq: np.ndarray, k: int, chunk: int = 4096):
        """(D, I) like faiss: float32 and int64 ``(B, k)``, padded with -inf / -1."""
        import torch

        B = len(xq)
        D = np.full((B, k), -np.inf, dtype=np.float32)
        I = np.full((B, k), -1, dtype=np.int64)
        kk = min(k, self.ntotal)
        if kk == 0 or B == 0:
            return D, I
        with torch.inference_mode():
            for s in range(0, B, chunk):
                q = torch.from_numpy(np.ascontiguousarray(xq[s : s + chunk])).to(self.device)
                scores = q @ self.xb.T  # (b, N)
                top = torch.topk(scores, kk, dim=1, sorted=True)
                D[s : s + chunk, :kk] = top.values.float().cpu().numpy()
                I[s : s + chunk, :kk] = self.ids[top.indices].cpu().numpy()
        return D, I
