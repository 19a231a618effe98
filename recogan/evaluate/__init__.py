"""Offline evaluation: protocols, metrics, significance and reports."""

from recogan.evaluate._metrics import (
    ACCURACY_METRICS,
    evaluate_model,
    mean_metrics,
    ranking_metrics,
    target_matrix,
)

__all__ = ["ACCURACY_METRICS", "evaluate_model", "mean_metrics", "ranking_metrics", "target_matrix"]
