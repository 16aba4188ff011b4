#!/usr/bin/python3
"""Compares `recmodel evaluate --predictions P --labels L --json` with scikit-learn on random and
edge-case inputs: every metric to 1e-9, the per-class table, the confusion matrix, and the
zero-division warnings (recmodel warns, naming the class, exactly when scikit-learn would).

Usage: sklearn_parity.py RECMODEL WORKDIR [--cases N] [--seed S]
"""
import argparse
import json
import math
import os
import random
import subprocess
import sys
import warnings

import numpy as np
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

TOLERANCE = 1e-9


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


class Case:
    def __init__(self, name, task, ids, truth, predicted, probs=None, top_k=5, formats=("jsonl", "jsonl")):
        self.name, self.task = name, task
        self.ids, self.truth, self.predicted, self.probs = ids, truth, predicted, probs
        self.top_k, self.formats = top_k, formats


def label_order(names):
    """recmodel's label order: numeric when every label is an integer, else by bytes."""
    try:
        return sorted(names, key=int)
    except ValueError:
        return sorted(names, key=lambda s: s.encode("utf-8"))


def classification_case(rng, name):
    kind = rng.choice(["names", "names", "stars", "binary", "binary"])
    if kind == "binary":
        classes = rng.choice([["neg", "pos"], ["0", "1"], ["irrelevant", "relevant"]])
    elif kind == "stars":
        classes = [str(i) for i in range(1, rng.randint(2, 6))]
    else:
        pool = ["electronics", "toys", "books", "garden", "Sports", "beauty", "auto", "music", "grocery"]
        classes = rng.sample(pool, rng.randint(1, 8))
    n = rng.choice([1, 2, 3, 5, 10, 40, 100, 300])
    skew = rng.random()
    truth = [rng.choice(classes[: max(1, int(len(classes) * skew) or 1)]) if rng.random() < 0.3 else rng.choice(classes)
             for _ in range(n)]
    accuracy = rng.random()
    predicted = [t if rng.random() < accuracy else rng.choice(classes) for t in truth]
    probs = None
    if rng.random() < 0.7 and len(classes) >= 2:
        probs = []
        decimals = rng.choice([None, 1, 2])  # rounding makes ties in the rankings
        for p in predicted:
            row = [rng.random() ** 2 for _ in classes]
            row[classes.index(p)] += rng.random() * 2
            total = sum(row)
            row = [v / total for v in row]
            if decimals:
                row = [round(v, decimals) for v in row]
            probs.append(dict(zip(classes, row)))
    ids = ["q%d" % i for i in range(n)]
    order = list(range(n))
    rng.shuffle(order)  # the files are joined by id, not by line
    top_k = rng.choice([1, 2, 3, 5])
    formats = (rng.choice(["jsonl", "csv", "tsv"]), rng.choice(["jsonl", "csv", "tsv"]))
    case = Case(name, "classification", ids, truth, predicted, probs, top_k, formats)
    case.order = order
    return case


def edge_cases():
    cases = []
    # A class never predicted, a class predicted but absent from the labels.
    cases.append(Case("never-predicted", "classification", ["a", "b", "c", "d"], ["x", "y", "x", "y"],
                      ["x", "x", "z", "x"]))
    cases.append(Case("absent-from-labels", "classification", ["1", "2", "3"], ["cat", "cat", "dog"],
                      ["cat", "bird", "dog"]))
    cases.append(Case("one-class-only", "classification", ["1", "2", "3"], ["a", "a", "a"], ["a", "a", "a"]))
    cases.append(Case("one-class-wrong", "classification", ["1", "2"], ["a", "a"], ["b", "b"]))
    cases.append(Case("single-example", "classification", ["only"], ["pos"], ["neg"],
                      [{"neg": 0.8, "pos": 0.2}]))
    cases.append(Case("single-example-right", "classification", ["only"], ["c"], ["c"],
                      [{"a": 0.1, "b": 0.2, "c": 0.7}], top_k=1))
    cases.append(Case("binary-one-class-in-truth", "classification", ["1", "2", "3"], ["neg", "neg", "neg"],
                      ["neg", "pos", "neg"], [{"neg": 0.9, "pos": 0.1}, {"neg": 0.3, "pos": 0.7},
                                              {"neg": 0.6, "pos": 0.4}]))
    cases.append(Case("binary-all-positive", "classification", ["1", "2", "3"], ["pos", "pos", "pos"],
                      ["neg", "pos", "pos"], [{"neg": 0.9, "pos": 0.1}, {"neg": 0.3, "pos": 0.7},
                                              {"neg": 0.5, "pos": 0.5}], top_k=1))
    cases.append(Case("all-ties", "classification", ["1", "2", "3", "4"], ["a", "b", "c", "a"],
                      ["a", "a", "a", "a"], [{"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25}] * 4, top_k=2))
    cases.append(Case("stars-ordinal", "classification", [str(i) for i in range(6)], ["1", "5", "3", "2", "10", "4"],
                      ["2", "5", "1", "2", "4", "4"]))
    cases.append(Case("regression-single", "regression", ["x"], [3.5], [2.0]))
    cases.append(Case("regression-constant-truth", "regression", ["x", "y", "z"], [2.0, 2.0, 2.0], [2.0, 2.5, 1.0]))
    cases.append(Case("regression-constant-perfect", "regression", ["x", "y"], [2.0, 2.0], [2.0, 2.0]))
    for c in cases:
        c.order = list(range(len(c.ids)))
    return cases


def regression_case(rng, name):
    n = rng.choice([2, 3, 10, 50, 200])
    scale = rng.choice([1.0, 5.0, 1000.0])
    truth = [rng.gauss(0, scale) if rng.random() < 0.7 else float(rng.randint(1, 5)) for _ in range(n)]
    predicted = [t + rng.gauss(0, scale * rng.random()) for t in truth]
    case = Case(name, "regression", ["r%d" % i for i in range(n)], truth, predicted)
    case.order = list(range(n))
    rng.shuffle(case.order)
    case.formats = (rng.choice(["jsonl", "csv"]), rng.choice(["jsonl", "tsv"]))
    return case


def write_rows(path, fmt, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        if fmt == "jsonl":
            for row in rows:
                f.write(json.dumps(dict(zip(header, row))) + "\n")
        else:
            import csv
            writer = csv.writer(f, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
            writer.writerow(header)
            for row in rows:
                writer.writerow([json.dumps(v) if isinstance(v, dict) else
                                 (repr(v) if isinstance(v, float) else v) for v in row])


def run_case(recmodel, work, case):
    pfmt, lfmt = case.formats
    predictions = os.path.join(work, "%s.pred.%s" % (case.name, pfmt))
    labels = os.path.join(work, "%s.labels.%s" % (case.name, lfmt))
    key = "label" if case.task == "classification" else "value"
    header = ["id", key] + (["probs"] if case.probs is not None else [])
    rows = []
    for i in case.order:
        row = [case.ids[i], case.predicted[i]]
        if case.probs is not None:
            row.append(case.probs[i])
        rows.append(row)
    write_rows(predictions, pfmt, header, rows)
    write_rows(labels, lfmt, ["id", key], [[case.ids[i], case.truth[i]] for i in range(len(case.ids))])
    args = [recmodel, "evaluate", "--json", "--predictions", predictions, "--labels", labels]
    if case.task == "classification":
        args += ["--top-k", str(case.top_k)]
    run = subprocess.run(args, capture_output=True, text=True)
    if run.returncode != 0:
        return ["exit %d: %s" % (run.returncode, run.stderr.strip())]
    got = json.loads(run.stdout)
    return (compare_classification if case.task == "classification" else compare_regression)(case, got, run.stderr)


def compare_regression(case, got, stderr):
    t, p = np.array(case.truth), np.array(case.predicted)
    want = {"mae": skm.mean_absolute_error(t, p), "rmse": skm.mean_squared_error(t, p, squared=False)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r2 = skm.r2_score(t, p)
    want["r2"] = None if math.isnan(r2) else r2
    return ["%s: recmodel %r, scikit-learn %r" % (k, got.get(k), v) for k, v in want.items() if not close(got.get(k), v)]


def compare_classification(case, got, stderr):
    problems = []
    names = set(case.truth) | set(case.predicted)
    if case.probs is not None:
        names |= set(case.probs[0])
    classes = label_order(names)
    index = {c: i for i, c in enumerate(classes)}
    yt = np.array([index[c] for c in case.truth])
    yp = np.array([index[c] for c in case.predicted])
    present = sorted(set(yt) | set(yp))

    def check(name, want):
        if not close(got.get(name), want):
            problems.append("%s: recmodel %r, scikit-learn %r" % (name, got.get(name), want))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p, r, f, s = skm.precision_recall_fscore_support(yt, yp, average=None, zero_division="warn")
    texts = [str(w.message) for w in caught if issubclass(w.category, UndefinedMetricWarning)]
    sk_precision_warn = any(t.startswith("Precision") for t in texts)
    sk_recall_warn = any(t.startswith("Recall") for t in texts)
    check("accuracy", skm.accuracy_score(yt, yp))
    for avg in ("macro", "micro", "weighted"):
        pa, ra, fa, _ = skm.precision_recall_fscore_support(yt, yp, average=avg, zero_division=0)
        check("precision_" + avg, pa)
        check("recall_" + avg, ra)
        check("f1_" + avg, fa)
    check("f1_macro", skm.f1_score(yt, yp, average="macro", zero_division=0))
    per_class = got.get("per_class", {})
    if list(per_class) != [classes[i] for i in present]:
        problems.append("per_class labels: recmodel %r, scikit-learn %r" % (list(per_class), [classes[i] for i in present]))
    else:
        for j, c in enumerate(present):
            row = per_class[classes[c]]
            for field, want in (("precision", p[j]), ("recall", r[j]), ("f1", f[j]), ("support", s[j])):
                if not close(row[field], float(want)):
                    problems.append("per_class %s %s: recmodel %r, scikit-learn %r" % (classes[c], field, row[field], want))
    cm = skm.confusion_matrix(yt, yp).tolist()
    if got["confusion_matrix"]["matrix"] != cm or got["confusion_matrix"]["labels"] != [classes[i] for i in present]:
        problems.append("confusion_matrix: recmodel %r, scikit-learn %r" % (got["confusion_matrix"], cm))
    if case.probs is not None:
        P = np.array([[row.get(c, 0.0) for c in classes] for row in case.probs])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if len(classes) > 2:
                want = skm.top_k_accuracy_score(yt, P, k=case.top_k, labels=list(range(len(classes))))
            else:
                want = skm.top_k_accuracy_score(yt, P[:, 1], k=case.top_k, labels=[0, 1])
        check("top_k_accuracy", want)
        if got.get("top_k") != case.top_k:
            problems.append("top_k: recmodel %r, asked %r" % (got.get("top_k"), case.top_k))
        if len(classes) == 2:
            if len(set(yt)) == 2:
                check("roc_auc", skm.roc_auc_score(yt, P[:, 1]))
            elif got.get("roc_auc", "missing") is not None:
                problems.append("roc_auc: recmodel %r, scikit-learn raises (one class in y_true)" % got.get("roc_auc"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                check("pr_auc", skm.average_precision_score(yt, P[:, 1]))
        elif "roc_auc" in got:
            problems.append("roc_auc reported for %d classes" % len(classes))
    elif "top_k_accuracy" in got:
        problems.append("top_k_accuracy reported without probabilities")
    try:
        values = [float(c) for c in classes]
        check("mae", skm.mean_absolute_error([values[i] for i in yt], [values[i] for i in yp]))
    except ValueError:
        if "mae" in got:
            problems.append("mae reported for non-numeric labels")
    # Warnings: recmodel names the classes exactly when scikit-learn warns.
    never = [classes[c] for c in present if c not in set(yp)]
    no_true = [classes[c] for c in present if c not in set(yt)]
    ours_precision = "never predicted" in stderr
    ours_recall = "no true example" in stderr
    if ours_precision != sk_precision_warn:
        problems.append("precision warning: recmodel %s, scikit-learn %s" % (ours_precision, sk_precision_warn))
    if ours_recall != sk_recall_warn:
        problems.append("recall warning: recmodel %s, scikit-learn %s" % (ours_recall, sk_recall_warn))
    for c in never + no_true:
        if "'%s'" % c not in stderr:
            problems.append("warning does not name class %r: %s" % (c, stderr.strip()))
    return problems


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("recmodel")
    parser.add_argument("work")
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    cases = edge_cases()
    for i in range(args.cases):
        cases.append(classification_case(rng, "c%03d" % i) if i % 5 else regression_case(rng, "r%03d" % i))
    failures = 0
    for case in cases:
        problems = run_case(args.recmodel, args.work, case)
        if problems:
            failures += 1
            if failures <= 10:
                print("MISMATCH %s (%s, %d examples, files %s):" % (case.name, case.task, len(case.ids), case.formats))
                for line in problems[:8]:
                    print("    " + line)
    kinds = {"classification": 0, "regression": 0}
    for c in cases:
        kinds[c.task] += 1
    if failures:
        print("FAIL: %d of %d cases differ from scikit-learn %s" % (failures, len(cases), skm.__name__))
        sys.exit(1)
    import sklearn
    print("ok %d cases (%d classification, %d regression, %d edge cases) equal scikit-learn %s to %g"
          % (len(cases), kinds["classification"], kinds["regression"], len(edge_cases()), sklearn.__version__,
             TOLERANCE))


if __name__ == "__main__":
    main()
