"""Top failure patterns: failing calls' error messages (and refusals) grouped into a few readable patterns.

Messages are first reduced to templates (numbers, ids and quoted values masked), then the distinct
templates are embedded with TF-IDF and merged by agglomerative clustering on cosine distance, so
"Rate limit reached for gpt-4o in org-123 ... try again in 20s" and "... in 7s" are one pattern
and a weekly review reads five lines rather than five thousand.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import TfidfVectorizer
from spanlake.analytics.errors import refusal
from spanlake.analytics.lake import as_lake, to_frame
from spanlake.analytics.window import Window

MAX_TEMPLATES = 2000
COLUMNS = ["pattern", "count", "share", "example", "top_terms", "error_types", "providers", "models",
           "first_seen", "last_seen"]
_MASKS = (
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE), "<id>"),
    (re.compile(r"\b(?:req|org|sk|msg|chatcmpl|run)[-_][A-Za-z0-9_-]+"), "<id>"),
    (re.compile(r"\b[0-9a-f]{12,}\b", re.IGNORECASE), "<hex>"),
    (re.compile(r"(['\"]).{0,200}?\1"), "<str>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
)


def template(message: str) -> str:
    """The message with variable parts masked, so recurring errors compare equal."""
    text = message.strip()
    for pattern, repl in _MASKS:
        text = pattern.sub(repl, text)
    return text[:500]


def _failures(source: Any, window: Window) -> pd.DataFrame:
    lake = as_lake(source)
    t = lake.spans(window)
    is_refusal = refusal(t)
    t = t.filter(lake.failed(t) | is_refusal)
    message = t.status_message.nullif("").coalesce(t.error_type, is_refusal.ifelse("refusal", "unknown error"))
    return to_frame(t.select(message=message, error_type=t.error_type.coalesce(is_refusal.ifelse("refusal", None)),
                             provider=t.provider, model=t.request_model, start_time=t.start_time))


def _cluster(templates: list[str], distance: float) -> np.ndarray:
    if len(templates) == 1:
        return np.zeros(1, dtype=int)
    vectors = TfidfVectorizer(token_pattern=r"[A-Za-z<>_]{2,}", ngram_range=(1, 2), sublinear_tf=True)
    matrix = vectors.fit_transform(templates).toarray()
    if not matrix.any():
        return np.zeros(len(templates), dtype=int)
    model = AgglomerativeClustering(n_clusters=None, distance_threshold=distance, metric="cosine",
                                    linkage="average")
    return model.fit_predict(np.where(matrix.any(axis=1, keepdims=True), matrix, 1e-9))


def _top_terms(texts: list[str], limit: int = 5) -> str:
    words = pd.Series(re.findall(r"[A-Za-z_]{3,}", " ".join(texts).lower()))
    return ", ".join(words.value_counts().head(limit).index)


def failure_patterns(source: Any, window: Window, limit: int = 10, distance: float = 0.6) -> pd.DataFrame:
    """The ``limit`` most frequent failure patterns in ``window``, with an example and who is affected."""
    rows = _failures(source, window)
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows["template"] = rows["message"].map(template)
    counts = rows["template"].value_counts().head(MAX_TEMPLATES)
    labels = dict(zip(counts.index, _cluster(list(counts.index), distance)))
    rows = rows[rows["template"].isin(labels)]
    rows["cluster"] = rows["template"].map(labels)
    out = []
    for _, group in rows.groupby("cluster"):
        top_template = group["template"].value_counts().index[0]
        out.append({"pattern": top_template, "count": len(group), "share": len(group) / len(rows),
                    "example": group.loc[group["template"] == top_template, "message"].iloc[0][:300],
                    "top_terms": _top_terms(group["template"].unique().tolist()),
                    "error_types": _joined(group["error_type"]), "providers": _joined(group["provider"]),
                    "models": _joined(group["model"]), "first_seen": group["start_time"].min(),
                    "last_seen": group["start_time"].max()})
    frame = pd.DataFrame(out, columns=COLUMNS)
    return frame.sort_values("count", ascending=False, ignore_index=True).head(limit)


def _joined(values: pd.Series, limit: int = 5) -> str:
    return ", ".join(str(v) for v in values.dropna().value_counts().head(limit).index)
