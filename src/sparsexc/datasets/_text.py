"""Shared steps of the text builders: split, TF-IDF fitted on the training part, label space from training.

Every builder turns its raw source into ``(row_ids, texts, label_lists)`` in a fixed order and hands them to
``build_text_splits``; that way all three text tasks follow the same rules:

1. rows are split by ``seeded_split`` (a seeded permutation), before anything is fitted;
2. the label space is the labels seen at least ``min_label_count`` times in the TRAINING part (sorted by
   name); test labels outside it are removed, and rows left with no label are dropped from both parts
   (counts in ``info``);
3. a ``TfidfVectorizer`` is fitted on the training texts only and applied to both parts, so no test word
   reaches the vocabulary or the idf weights.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from sparsexc._sparse import as_features, as_label_matrix
from sparsexc.errors import ConfigurationError
from sparsexc.io.data import MultiLabelData

from .splits import Splits, seeded_split

__all__ = ["TFIDF_SETTINGS", "build_text_splits"]

#: Fixed TF-IDF settings of the text builders (see docs/data.md). ``sublinear_tf`` uses 1 + log(tf);
#: rows are L2-normalised; terms must occur in ``min_df`` training documents; the ``max_features`` most
#: frequent terms are kept; ``max_df`` drops near-stop-words.
TFIDF_SETTINGS: dict = {
    "lowercase": True,
    "ngram_range": (1, 2),
    "min_df": 2,
    "max_df": 0.5,
    "max_features": 50000,
    "sublinear_tf": True,
    "norm": "l2",
}


def build_text_splits(
    name: str,
    row_ids: Sequence[str],
    texts: Sequence[str],
    label_lists: Sequence[Sequence[str]],
    *,
    test_fraction: float,
    seed: int,
    min_label_count: int,
    info: dict,
    tfidf_settings: dict | None = None,
) -> Splits:
    """Split, select labels on train, fit TF-IDF on train; see the module docstring for the rules."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # heavy import, only when building

    n_rows = len(texts)
    if not (len(row_ids) == len(label_lists) == n_rows):
        raise ValueError("row_ids, texts and label_lists must have the same length")
    train_rows, test_rows = seeded_split(n_rows, test_fraction, seed)

    counts = Counter(label for i in train_rows for label in set(label_lists[i]))
    label_names = sorted(label for label, count in counts.items() if count >= min_label_count)
    label_id = {label: j for j, label in enumerate(label_names)}

    def kept(rows: np.ndarray) -> tuple[list[int], list[list[int]], int]:
        out_rows, out_labels, removed = [], [], 0
        for i in rows:
            ids = sorted({label_id[label] for label in label_lists[i] if label in label_id})
            removed += len(set(label_lists[i])) - len(ids)
            if ids:
                out_rows.append(int(i))
                out_labels.append(ids)
        return out_rows, out_labels, removed

    train_keep, train_labels, train_removed = kept(train_rows)
    test_keep, test_labels, test_removed = kept(test_rows)
    if not train_keep or not test_keep:
        raise ConfigurationError(f"{name}: too few rows to build train and test parts ({n_rows} rows in the source)")

    settings = dict(TFIDF_SETTINGS if tfidf_settings is None else tfidf_settings)
    vectorizer = TfidfVectorizer(dtype=np.float32, **settings)
    X_train = vectorizer.fit_transform([texts[i] for i in train_keep])
    X_test = vectorizer.transform([texts[i] for i in test_keep])
    feature_names = [str(t) for t in vectorizer.get_feature_names_out()]
    n_features, n_labels = len(feature_names), len(label_names)

    parts = {}
    for part, labels in (("train", train_labels), ("test", test_labels)):
        X = as_features(X_train if part == "train" else X_test, name=f"{name} {part} X", n_features=n_features)
        Y = as_label_matrix(labels, n_labels=n_labels, name=f"{name} {part} Y")
        parts[part] = MultiLabelData(X, Y, feature_names, label_names, {"name": name, "part": part})

    info = dict(info)
    info.update(
        {
            "split": {
                "kind": "seeded",
                "seed": seed,
                "test_fraction": test_fraction,
                "rule": "test = first round(test_fraction * n) of numpy.random.default_rng(seed).permutation(n)",
            },
            "source_rows": n_rows,
            "min_label_count_in_train": min_label_count,
            "dropped_train_rows_without_labels": int(len(train_rows) - len(train_keep)),
            "dropped_test_rows_without_labels": int(len(test_rows) - len(test_keep)),
            "removed_train_label_occurrences": int(train_removed),
            "removed_test_label_occurrences": int(test_removed),
            "tfidf": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()},
            "tfidf_fitted_on": "train",
        }
    )
    kept_ids = {"train": [row_ids[i] for i in train_keep], "test": [row_ids[i] for i in test_keep]}
    return Splits(name, parts["train"], parts["test"], info, kept_ids)
