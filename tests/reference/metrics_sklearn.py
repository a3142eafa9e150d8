"""scikit-learn's average_precision_score and roc_auc_score on the scores bench/metrics.ts measures.

Usage: python3 metrics_sklearn.py SCORES.f32 LABELS.u8 -> one JSON line: both values and the best of 3 timings
(milliseconds, after one warm-up), so the bench can print our time / scikit-learn's and check the values agree.
"""
import json
import sys
import time

import numpy as np
import sklearn
from sklearn.metrics import average_precision_score, roc_auc_score

scores = np.fromfile(sys.argv[1], dtype=np.float32)
labels = np.fromfile(sys.argv[2], dtype=np.uint8)


def best(fn):
    fn()
    t = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        t = min(t, (time.perf_counter() - t0) * 1000)
    return t


print(
    json.dumps(
        {
            "sklearn": sklearn.__version__,
            "averagePrecision": float(average_precision_score(labels, scores)),
            "rocAuc": float(roc_auc_score(labels, scores)),
            "averagePrecisionMs": best(lambda: average_precision_score(labels, scores)),
            "rocAucMs": best(lambda: roc_auc_score(labels, scores)),
        }
    )
)
