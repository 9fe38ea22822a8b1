"""Evaluation metrics. Retrieval (Recall@K, NMI) is exported here;
localization metrics live in `tfcaf.metrics.localization` (the
wsolevaluation box protocol in `tfcaf.metrics.wsolevaluation`), faithfulness
metrics in `tfcaf.metrics.faithfulness`."""

from tfcaf.metrics.retrieval import nmi
from tfcaf.metrics.retrieval import normalized_mutual_information
from tfcaf.metrics.retrieval import recall_at_k

__all__ = ["nmi", "normalized_mutual_information", "recall_at_k"]
