"""Training pairs and popularity features, built on the host from a Dataset.

:class:`TrainingPairs` are the (history before t, item bought at t) pairs the GAN trains on;
:func:`history_window` cuts a history to its last events; :class:`WindowPopularity` holds the
per-day popularity features of the item prior.
"""

from __future__ import annotations

import numpy as np

from recogan.data import Dataset
from recogan.features import DAY


class TrainingPairs:
    """All (history-before-t, item-bought-at-t) pairs of a Dataset, built lazily per batch.

    Attributes: ``user``, ``target``, ``time`` per pair and ``cut``: the position in the
    time-sorted event arrays where the pair's history ends (exclusive), so the history is
    ``items[max(start_u, cut - L):cut]``, all strictly earlier than ``time``.
    """

    def __init__(
        self,
        data: Dataset,
        *,
        max_history: int,
        skip_repeats: bool = True,
        min_history: int = 1,
        basket_context: bool = False,
    ) -> None:
        indptr, items, times = data.histories()
        self.indptr, self.items, self.times = indptr, items, times
        self.max_history = int(max_history)
        n = len(items)
        user = np.repeat(np.arange(data.n_users), np.diff(indptr))
        # first position of each (user, time) group = where this pair's history ends
        starts = np.ones(n, dtype=bool)
        starts[1:] = (user[1:] != user[:-1]) | (times[1:] != times[:-1])
        cut = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
        self.basket_context = bool(basket_context)
        if self.basket_context:
            # the history runs to the end of the pair's own basket, the target left out
            ends = np.ones(n, dtype=bool)
            ends[:-1] = starts[1:]
            end = np.minimum.accumulate(np.where(ends, np.arange(1, n + 1), n)[::-1])[::-1]
            keep = (end - indptr[user] - 1) >= min_history
        else:
            end = cut
            keep = (cut - indptr[user]) >= min_history
        if skip_repeats:
            # a repeat: the same item bought by the same user at an earlier time
            key = user.astype(np.int64) * data.n_items + items
            order = np.lexsort((times, key))
            first_t = np.empty(n, dtype=np.int64)
            k_sorted = key[order]
            grp_start = np.ones(n, dtype=bool)
            grp_start[1:] = k_sorted[1:] != k_sorted[:-1]
            first_idx = np.maximum.accumulate(np.where(grp_start, np.arange(n), 0))
            first_t[order] = times[order][first_idx]
            keep &= first_t >= times
        # one pair per (user, time, item) even if the event repeats in the basket
        dup = np.zeros(n, dtype=bool)
        dup[1:] = (user[1:] == user[:-1]) & (times[1:] == times[:-1]) & (items[1:] == items[:-1])
        keep &= ~dup
        self.user = user[keep]
        self.target = items[keep].astype(np.int64)
        self.time = times[keep]
        self.cut = end[keep]
        self.pos = np.arange(n)[keep]

    def __len__(self) -> int:
        return len(self.target)

    def histories(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(hist, hist_times)``, both ``(len(idx), max_history)``, most recent last;
        empty slots are item ``-1``. The target itself never appears in its history."""
        L = self.max_history
        start, end = self.indptr[self.user[idx]], self.cut[idx]
        if not self.basket_context:
            return history_window(self.items, self.times, start, end, L)
        hist, ht = history_window(self.items, self.times, start, end, L + 1)  # (B, L + 1)
        # drop the target's own slot (or the oldest one when the basket outgrows the window)
        slot = self.pos[idx] - (end - (L + 1))
        slot = np.where(slot >= 0, slot, 0)
        keep = np.ones(hist.shape, dtype=bool)
        keep[np.arange(len(idx)), slot] = False
        hist, ht = hist[keep].reshape(-1, L), ht[keep].reshape(-1, L)
        hist = np.where(hist == self.target[idx][:, None], -1, hist)  # repeats of the target
        return hist, ht


def history_window(items, times, start, end, L):
    """The last ``L`` events in ``[start, end)`` per row of the sorted event arrays."""
    pos = np.asarray(end)[:, None] + np.arange(-L, 0)[None, :]  # (B, L)
    valid = pos >= np.asarray(start)[:, None]
    pos = np.where(valid, pos, 0)
    hist = np.where(valid, items[pos], -1).astype(np.int64)
    ht = np.where(valid, times[pos], 0).astype(np.int64)
    return hist, ht


class WindowPopularity:
    """Events per item in windows of whole days before a time, as ``log1p``, from a day grid
    (one feature per window: short windows follow trends, long ones are stable; a window of
    0 days means all time so far). The day of ``t`` itself is left out, so a pair's own basket
    never counts towards its feature."""

    def __init__(self, data: Dataset, windows_days) -> None:
        t = data.times
        self.t0 = int(t.min()) if len(t) else 0
        self.windows = [int(w) for w in np.atleast_1d(windows_days)]
        if not self.windows or min(self.windows) < 0:
            raise ValueError(
                f"popularity windows must be >= 1 day (or 0: all time), got {windows_days}"
            )
        day = (t - self.t0) // int(DAY)
        n_days = int(day.max()) + 2 if len(t) else 2
        counts = np.zeros((n_days, data.n_items), dtype=np.int32)
        np.add.at(counts, (day, data.item_idx), 1)
        cum = np.vstack([np.zeros((1, data.n_items), np.int32), np.cumsum(counts, 0)])
        days = np.arange(len(cum))
        #: ``table[d, w]``: log1p of the events per item on days ``[d - window_w, d)``.
        self.table = np.stack(
            [np.log1p(cum - cum[np.maximum(days - w, 0)] if w else cum) for w in self.windows],
            axis=1,
        ).astype(np.float32)  # (n_days + 1, W, n_items)

    def day_of(self, times: np.ndarray) -> np.ndarray:
        d = (np.asarray(times, dtype=np.int64) - self.t0) // int(DAY)
        return np.clip(d, 0, self.table.shape[0] - 1)

    def logpop(self, times: np.ndarray) -> np.ndarray:
        """``(B, W, n_items)`` float32 features for events at ``times``."""
        return self.table[self.day_of(times)]

    def after(self, t_end: int) -> np.ndarray:
        """``(W, n_items)``: the features for recommending after the last training event (its
        day included)."""
        return self.table[min(int(self.day_of([t_end])[0]) + 1, self.table.shape[0] - 1)].copy()
