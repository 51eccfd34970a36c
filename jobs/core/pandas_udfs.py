"""The pandas UDFs: thin Spark wrappers that apply the pure functions of ``udfs/`` to Arrow batches.

Each loads its model or tokenizer once per Python worker (the first batch) and reuses it for every later
batch of that worker.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

# pandas at module level: pandas_udf resolves its type hints by name
import pandas as pd
import pyarrow as pa

from jobs.core.models import ScoringModel, load_tokenizer
from udfs import fasttext_models
from udfs.classifier import normalize_texts
from udfs.minhash import signature_jaccard
from udfs.mix import count_tokens


def _normalized_batches(scoring: ScoringModel,
                        batches: Iterator[pd.Series]) -> Iterator[tuple[Any, list[str]]]:
    """(model, normalised texts) per Arrow batch; the model is loaded once per Python worker."""
    model = scoring.load()
    for texts in batches:
        arrow_texts = pa.array(texts, type=pa.string(), from_pandas=True)
        yield model, normalize_texts(arrow_texts, scoring.normalization)


def score_udf(scoring: ScoringModel) -> Any:
    """text -> probability of ``scoring.positive_label``."""
    from pyspark.sql.functions import pandas_udf

    label = scoring.positive_label
    if label is None:
        raise ValueError("score_udf needs a positive label")

    @pandas_udf("double")  # type: ignore[call-overload]
    def classifier_score(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for model, normalized in _normalized_batches(scoring, batches):
            yield pd.Series(fasttext_models.label_probability(model, normalized, label))

    return classifier_score


def label_udf(scoring: ScoringModel) -> Any:
    """text -> struct<label, score> of the top label."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("label string, score double")  # type: ignore[call-overload]
    def classifier_label(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        for model, normalized in _normalized_batches(scoring, batches):
            labels, scores = fasttext_models.predict_top(model, normalized)
            yield pd.DataFrame({"label": labels, "score": scores})

    return classifier_label


def token_count_udf(uri: str, storage_options: Mapping[str, str] | None = None) -> Any:
    """text -> token count with the tokenizer at ``uri``."""
    from pyspark.sql.functions import pandas_udf

    options = dict(storage_options or {})

    @pandas_udf("long")  # type: ignore[call-overload]
    def n_tokens(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        tokenizer = load_tokenizer(uri, options)
        for texts in batches:
            yield pd.Series(count_tokens(pa.array(texts, type=pa.string(), from_pandas=True), tokenizer))

    return n_tokens


def jaccard_udf(num_perm: int) -> Any:
    """(signature, signature) -> estimated Jaccard similarity."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("double")  # type: ignore[call-overload]
    def jaccard(left: pd.Series, right: pd.Series) -> pd.Series:
        return pd.Series(signature_jaccard(list(left), list(right), num_perm))

    return jaccard
