"""Offline evaluation: protocols, metrics, significance, tuning and reports.

``evaluate(data, models=[...])`` tunes each model with the same budget on validation NDCG@10,
refits it on train + valid, scores the test period and returns a :class:`Report`. By
default it runs the GAN beside its retrieval part (``retrieval``) and the report says what the
adversarial part added (:func:`adversarial_ablation`, ``Report.adversarial_ablation()``).
"""

from recogan._trials import TrialError, plan_workers
from recogan.evaluate._ablation import ablation_line, adversarial_ablation
from recogan.evaluate._activity import ACTIVITY_EDGES, activity_bucket
from recogan.evaluate._beyond import (
    copurchase_similarity,
    coverage,
    gini,
    intra_list_diversity,
    list_metrics,
    popularity_percentile,
    self_information,
    vector_similarity,
)
from recogan.evaluate._check import ValidationCheck, validation_check
from recogan.evaluate._protocol import (
    PROTOCOLS,
    SPREAD_MIN_TRAIN,
    Protocol,
    sampled_candidates,
    score_model,
)
from recogan.evaluate._report import Report
from recogan.evaluate._run import BASELINES, DEFAULT_MODELS, evaluate
from recogan.evaluate._state import RunState, check_state_dir, is_state_dir
from recogan.evaluate._stats import bootstrap_ci, paired_test, significance_mark
from recogan.evaluate._tune import TuneResult, candidate_params, search_space, tune
from recogan.evaluate._windows import (
    Choice,
    agreement_warning,
    choose_model,
    spread_split,
    window_agreement,
    window_scores,
    window_shift,
)
from recogan.metrics import (
    ACCURACY_METRICS,
    evaluate_model,
    mean_metrics,
    ranking_metrics,
    target_matrix,
)

__all__ = [
    "ACCURACY_METRICS",
    "ACTIVITY_EDGES",
    "BASELINES",
    "DEFAULT_MODELS",
    "PROTOCOLS",
    "SPREAD_MIN_TRAIN",
    "Choice",
    "Protocol",
    "Report",
    "RunState",
    "TrialError",
    "TuneResult",
    "ValidationCheck",
    "ablation_line",
    "activity_bucket",
    "adversarial_ablation",
    "agreement_warning",
    "bootstrap_ci",
    "candidate_params",
    "check_state_dir",
    "choose_model",
    "copurchase_similarity",
    "coverage",
    "evaluate",
    "evaluate_model",
    "gini",
    "intra_list_diversity",
    "is_state_dir",
    "list_metrics",
    "mean_metrics",
    "paired_test",
    "plan_workers",
    "popularity_percentile",
    "ranking_metrics",
    "sampled_candidates",
    "score_model",
    "search_space",
    "self_information",
    "significance_mark",
    "spread_split",
    "target_matrix",
    "tune",
    "validation_check",
    "vector_similarity",
    "window_agreement",
    "window_scores",
    "window_shift",
]
