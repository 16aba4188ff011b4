#!/usr/bin/python3
"""Writes random and edge-case metric inputs with scikit-learn's answers, for
tests/metrics/sklearn_parity_test.cpp (which computes recmodel's in-process and compares to 1e-9).

Usage: sklearn_cases.py OUT.json [--cases N] [--seed S]
Classes are integers 0..C-1; labels=None everywhere except top_k (labels=range(C)).
"""
import argparse
import json
import math
import random
import warnings

import numpy as np
import sklearn
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning


def classification(rng, n, c, accuracy, with_probs, decimals, top_k, ordinal):
    truth = [rng.randrange(c) for _ in range(n)]
    if rng.random() < 0.3:  # skewed: some classes rare or absent
        truth = [min(t, rng.randrange(c)) for t in truth]
    pred = [t if rng.random() < accuracy else rng.randrange(c) for t in truth]
    probs = None
    if with_probs and c >= 2:
        probs = []
        for p in pred:
            row = [rng.random() ** 2 for _ in range(c)]
            row[p] += rng.random() * 2
            total = sum(row)
            row = [v / total for v in row]
            if decimals:
                row = [round(v, decimals) for v in row]
            probs.append(row)
    values = sorted(rng.sample(range(1, 21), c)) if ordinal else None
    return expected_classification(truth, pred, c, probs, top_k, values)


def expected_classification(truth, pred, c, probs, top_k, values):
    yt, yp = np.array(truth), np.array(pred)
    want = {"accuracy": skm.accuracy_score(yt, yp)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p, r, f, s = skm.precision_recall_fscore_support(yt, yp, average=None, zero_division="warn")
    texts = [str(w.message) for w in caught if issubclass(w.category, UndefinedMetricWarning)]
    want["per_class"] = [[float(a), float(b), float(d), int(e)] for a, b, d, e in zip(p, r, f, s)]
    for avg in ("macro", "micro", "weighted"):
        pa, ra, fa, _ = skm.precision_recall_fscore_support(yt, yp, average=avg, zero_division=0)
        want["precision_" + avg], want["recall_" + avg], want["f1_" + avg] = pa, ra, fa
    want["labels"] = sorted(set(truth) | set(pred))
    want["confusion"] = skm.confusion_matrix(yt, yp).tolist()
    if probs is not None:
        P = np.array(probs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if c > 2:
                want["top_k_accuracy"] = skm.top_k_accuracy_score(yt, P, k=top_k, labels=list(range(c)))
            else:
                want["top_k_accuracy"] = skm.top_k_accuracy_score(yt, P[:, 1], k=top_k, labels=[0, 1])
            if c == 2:
                want["roc_auc"] = skm.roc_auc_score(yt, P[:, 1]) if len(set(truth)) == 2 else None
                want["pr_auc"] = skm.average_precision_score(yt, P[:, 1])
    if values is not None:
        want["mae"] = skm.mean_absolute_error([values[t] for t in truth], [values[q] for q in pred])
    return {"task": "classification", "num_classes": c, "truth": truth, "pred": pred,
            "probs": [v for row in probs for v in row] if probs is not None else [], "top_k": top_k,
            "class_values": values or [], "expected": want,
            "warn_precision": any(t.startswith("Precision") for t in texts),
            "warn_recall": any(t.startswith("Recall") for t in texts)}


def regression(truth, pred):
    t, p = np.array(truth, dtype=float), np.array(pred, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r2 = skm.r2_score(t, p)
    return {"task": "regression", "truth": list(map(float, truth)), "pred": list(map(float, pred)),
            "expected": {"mae": skm.mean_absolute_error(t, p), "rmse": skm.mean_squared_error(t, p, squared=False),
                         "r2": None if math.isnan(r2) else r2}}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    cases = [
        # A class never predicted; a class predicted but never true; one class only; a single example.
        expected_classification([0, 1, 0, 1], [0, 0, 0, 0], 2, None, 1, None),
        expected_classification([0, 0, 1], [0, 2, 1], 3, None, 1, None),
        expected_classification([1, 1, 1], [1, 1, 1], 3, None, 1, None),
        expected_classification([0, 0], [1, 1], 2, [[0.4, 0.6], [0.3, 0.7]], 1, None),
        expected_classification([1], [0], 2, [[0.8, 0.2]], 1, None),
        expected_classification([2], [2], 3, [[0.1, 0.2, 0.7]], 1, [1, 2, 3]),
        expected_classification([0, 0, 0], [0, 1, 0], 2, [[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]], 1, None),
        expected_classification([1, 1, 1], [0, 1, 1], 2, [[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]], 1, None),
        expected_classification([0, 1, 2, 0], [0, 0, 0, 0], 4, [[0.25] * 4] * 4, 2, None),
        expected_classification([0, 1, 2, 0], [0, 0, 0, 0], 4, [[0.25] * 4] * 4, 1, None),
        regression([3.5], [2.0]),
        regression([2.0, 2.0, 2.0], [2.0, 2.5, 1.0]),
        regression([2.0, 2.0], [2.0, 2.0]),
        regression([1e6, 1e6 + 1, 1e6 + 2], [1e6 + 0.5, 1e6 + 1, 1e6 + 1.5]),
    ]
    for i in range(args.cases):
        if i % 6 == 5:
            n = rng.choice([2, 3, 10, 100, 500])
            scale = rng.choice([1.0, 5.0, 1000.0])
            truth = [rng.gauss(0, scale) if rng.random() < 0.7 else float(rng.randint(1, 5)) for _ in range(n)]
            cases.append(regression(truth, [t + rng.gauss(0, scale * rng.random()) for t in truth]))
            continue
        c = rng.choice([1, 2, 2, 3, 4, 5, 8, 12])
        cases.append(classification(rng, rng.choice([1, 2, 3, 5, 10, 40, 100, 400]), c, rng.random(),
                                    rng.random() < 0.75, rng.choice([None, 1, 2]), rng.choice([1, 2, 3, 5]),
                                    rng.random() < 0.3))
    with open(args.out, "w") as f:
        json.dump({"sklearn": sklearn.__version__, "cases": cases}, f)


if __name__ == "__main__":
    main()
