"""sparsexc.metrics: ranking and set metrics for (extreme) multi-label classification.

Inputs are sparse-first. True labels and label sets: a CSR 0/1 indicator, a dense 0/1 array or a list of
label-id lists. Scores, for the ranking metrics: a dense (n_samples, n_labels) array, a sparse matrix of
scores (missing entries = not predicted, ranked below every stored entry) or a tuple ``(indices, scores)`` of
top-k predictions (index -1 = no prediction). Rankings break ties by **lower label id**, so every metric is
deterministic and the three score forms agree. Everything is vectorised over rows.

* :mod:`~sparsexc.metrics.ranking`: P@k, R@k, MAP@k, nDCG@k, PSP@k, PSnDCG@k;
* :mod:`~sparsexc.metrics.full_ranking`: LRAP, mean average precision over labels, coverage;
* :mod:`~sparsexc.metrics.sets`: micro/macro F1, the sparsemax paper's macro-F1, example F1, Jaccard, Hamming;
* :mod:`~sparsexc.metrics.propensity`: inverse propensities (Jain et al. 2016);
* :mod:`~sparsexc.metrics.evaluate`: :func:`evaluate`, the dict of named metrics the CLI and trainer print.
"""

from sparsexc.metrics.evaluate import (
    EXAMPLE_F1,
    HAMMING,
    JACCARD,
    LOWER_IS_BETTER,
    MACRO_F1,
    MACRO_F1_PAPER,
    MICRO_F1,
    NDCG_AT,
    PRECISION_AT,
    PROPENSITY_KEYS,
    PSNDCG_AT,
    PSP_AT,
    RANKING_KEYS,
    RECALL_AT,
    SET_KEYS,
    evaluate,
)
from sparsexc.metrics.full_ranking import coverage, label_ranking_average_precision, mean_average_precision
from sparsexc.metrics.propensity import inverse_propensity
from sparsexc.metrics.ranking import map_at_k, ndcg_at_k, precision_at_k, psndcg_at_k, psp_at_k, recall_at_k
from sparsexc.metrics.sets import example_f1, hamming_loss, jaccard, macro_f1, macro_f1_paper, micro_f1

__all__ = [
    "EXAMPLE_F1",
    "HAMMING",
    "JACCARD",
    "LOWER_IS_BETTER",
    "MACRO_F1",
    "MACRO_F1_PAPER",
    "MICRO_F1",
    "NDCG_AT",
    "PRECISION_AT",
    "PROPENSITY_KEYS",
    "PSNDCG_AT",
    "PSP_AT",
    "RANKING_KEYS",
    "RECALL_AT",
    "SET_KEYS",
    "coverage",
    "evaluate",
    "example_f1",
    "hamming_loss",
    "inverse_propensity",
    "jaccard",
    "label_ranking_average_precision",
    "macro_f1",
    "macro_f1_paper",
    "map_at_k",
    "mean_average_precision",
    "micro_f1",
    "ndcg_at_k",
    "precision_at_k",
    "psndcg_at_k",
    "psp_at_k",
    "recall_at_k",
]
