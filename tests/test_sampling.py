"""The reservoir sample of misclassified items: reproducible, uniform, order- and shard-independent."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chisquare

from diagnose.core.sampling import ErrorSampler, sample_errors, sample_keys


def _predictions(n: int = 300, classes: int = 5, error: float = 0.3, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, classes, n)
    wrong = rng.random(n) < error
    pred = np.where(wrong, (label + rng.integers(1, classes, n)) % classes, label)
    return pd.DataFrame({"index": np.arange(n), "label": label, "pred": pred, "confidence": rng.random(n)})


def test_same_seed_same_sample_other_seed_other_sample() -> None:
    df = _predictions()
    a, b = sample_errors(df, 20, seed=7), sample_errors(df, 20, seed=7)
    assert a.rows.equals(b.rows)
    c = sample_errors(df, 20, seed=8)
    assert set(a.rows["index"]) != set(c.rows["index"])


def test_sample_holds_only_misclassified_items_and_counts_them() -> None:
    df = _predictions()
    s = sample_errors(df, 25, seed=0)
    wrong = df[df.label != df.pred]
    assert len(s.rows) == 25
    assert set(s.rows["index"]) <= set(wrong["index"])
    assert (s.rows["label"] != s.rows["pred"]).all()
    assert s.items == len(df) and s.errors == len(wrong)
    # Pair counts against pandas, independently.
    expected = wrong.groupby(["label", "pred"]).size().to_dict()
    assert {(a, b): c for a, b, c in s.pairs} == expected
    assert [c for *_, c in s.pairs] == sorted(expected.values(), reverse=True)


def test_fewer_errors_than_the_sample_gives_all_of_them() -> None:
    df = _predictions(n=50, error=0.2)
    s = sample_errors(df, 100, seed=3)
    assert s.all_errors
    assert sorted(s.rows["index"]) == sorted(df.loc[df.label != df.pred, "index"])


def test_order_batches_and_shards_do_not_change_the_sample() -> None:
    df = _predictions(n=1000)
    whole = sample_errors(df, 30, seed=11).rows
    shuffled = df.sample(frac=1.0, random_state=5)
    for size in (1, 7, 64, 333):
        sampler = ErrorSampler(30, seed=11)
        for start in range(0, len(shuffled), size):
            sampler.add(shuffled.iloc[start : start + size])
        got = sampler.result()
        assert got.rows.equals(whole), size
        assert got.items == len(df)


@pytest.mark.slow
def test_inclusion_is_uniform_over_misclassified_items() -> None:
    # 40 misclassified of 100; 5,000 seeds drawing 8 each: every item expected 1,000 times.
    df = _predictions(n=100, error=0.4, seed=2)
    wrong = df.loc[df.label != df.pred, "index"].to_numpy()
    counts = Counter()
    draws = 5000
    for seed in range(draws):
        counts.update(sample_errors(df, 8, seed=seed).rows["index"].tolist())
    assert set(counts) == set(wrong.tolist())
    observed = np.array([counts[i] for i in wrong])
    expected = np.full(len(wrong), draws * 8 / len(wrong))
    # A biased sampler (say, favouring early indexes) fails this at p < 0.001.
    assert chisquare(observed, expected).pvalue > 0.001


@pytest.mark.slow
def test_every_subset_is_equally_likely() -> None:
    # 6 misclassified items, samples of 2: the 15 possible pairs must come up equally often.
    df = pd.DataFrame({"index": np.arange(10), "label": [0] * 10, "pred": [1] * 6 + [0] * 4})
    draws = 4500
    counts = Counter(tuple(sample_errors(df, 2, seed=s).rows["index"]) for s in range(draws))
    subsets = list(itertools.combinations(range(6), 2))
    assert set(counts) == set(subsets)
    assert chisquare([counts[s] for s in subsets]).pvalue > 0.001


def test_keys_do_not_depend_on_batching() -> None:
    idx = np.arange(10_000, dtype=np.int64)
    assert np.array_equal(sample_keys(idx, 5), np.concatenate([sample_keys(idx[:3], 5), sample_keys(idx[3:], 5)]))
    assert not np.array_equal(sample_keys(idx, 5), sample_keys(idx, 6))


def test_string_labels_are_sampled_and_paired() -> None:
    df = _predictions(n=200)
    names = {k: f"class {k}" for k in range(5)}
    named = df.assign(label=df.label.map(names), pred=df.pred.map(names))
    s, t = sample_errors(named, 10, seed=4), sample_errors(df, 10, seed=4)
    assert s.rows["index"].tolist() == t.rows["index"].tolist()
    assert [(names[a], names[b], c) for a, b, c in t.pairs] == list(s.pairs)


def test_top_pairs_count_a_pair_seen_in_dense_and_sparse_batches_in_full() -> None:
    sampler = ErrorSampler(5)
    label = np.repeat(np.array([0, 2, 3, 4], dtype=np.int64), 2)  # (0, 1), (2, 3), (3, 4), (4, 5) twice each
    sampler.offer(np.arange(8), label, label + 1)
    sampler.offer(np.array([8]), np.array([1]), np.array([2]))  # (1, 2) once, in the dense matrix
    # A class past DENSE_CLASSES sends this batch to the dict: (1, 2) five times more.
    sampler.offer(np.arange(9, 15), np.array([1, 1, 1, 1, 1, 5000]), np.array([2, 2, 2, 2, 2, 1]))
    everything = sampler.result().pairs
    assert everything[0] == (1, 2, 6)
    assert sampler.result(top_pairs=3).pairs == everything[:3]


def test_sample_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="sample size"):
        ErrorSampler(0)
