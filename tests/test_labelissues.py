"""Confident learning (diagnose.core.labelissues) against cleanlab, and on planted label flips."""

from __future__ import annotations

import numpy as np
import pytest

from diagnose.core.labelissues import (
    NEIGHBOURS,
    NO_ITEMS,
    ThresholdAccumulator,
    class_thresholds,
    confident_issues,
    confident_issues_full,
    flag_sample,
    nearest_neighbours,
    neighbour_issues,
)

cleanlab_filter = pytest.importorskip("cleanlab.filter")
cleanlab_rank = pytest.importorskip("cleanlab.rank")


def _noisy(seed: int, n: int, classes: int, flip: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(given labels, probabilities, flipped mask): softmax of noisy logits that favour the true class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    logits = rng.normal(0, 1, (n, classes))
    logits[np.arange(n), y] += rng.uniform(0.5, 4)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    flipped = rng.random(n) < flip
    given = y.copy()
    given[flipped] = (y[flipped] + rng.integers(1, classes, flipped.sum())) % classes
    return given, p, flipped


@pytest.mark.parametrize(("seed", "classes"), [(0, 2), (1, 3), (2, 10), (3, 10), (4, 100)])
def test_same_issues_and_scores_as_cleanlab(seed: int, classes: int) -> None:
    given, p, _ = _noisy(seed, 3000, classes)
    ours, score = confident_issues_full(given, p)
    theirs = cleanlab_filter.find_label_issues(given, p, filter_by="confident_learning", n_jobs=1)
    assert theirs.sum() > 0
    assert np.array_equal(ours, theirs)
    quality = cleanlab_rank.get_label_quality_scores(given, p, method="normalized_margin")
    assert np.allclose(score, 1 - quality, atol=1e-12)


def test_a_class_nobody_is_labelled_with_is_never_confident() -> None:
    given, p, _ = _noisy(5, 2000, 6)
    given[given == 5] = 0  # class 5 keeps its probabilities but no item carries its label
    ours, _ = confident_issues_full(given, p)
    theirs = cleanlab_filter.find_label_issues(given, p, filter_by="confident_learning", n_jobs=1)
    assert np.array_equal(ours, theirs)
    assert class_thresholds(given, p[np.arange(len(given)), given], 6)[5] == NO_ITEMS


def test_top_k_is_exact_with_every_class_and_conservative_with_fewer() -> None:
    given, p, _ = _noisy(6, 4000, 20)
    n = len(given)
    p_label = p[np.arange(n), given]
    thr = class_thresholds(given, p_label, 20)
    order = np.argsort(-p, axis=1)
    full, _ = confident_issues_full(given, p)
    for k in (20, 5, 2):
        top = order[:, :k]
        flags, _ = confident_issues(given, p_label, top, np.take_along_axis(p, top, axis=1), thr)
        if k == 20:
            assert np.array_equal(flags, full)
        assert not (flags & ~full).any()  # never flags what the full matrix does not
        assert flags.sum() >= 0.9 * full.sum()


def test_streamed_thresholds_equal_the_whole() -> None:
    given, p, _ = _noisy(7, 1000, 4)
    p_label = p[np.arange(1000), given]
    acc = ThresholdAccumulator()
    for start in range(0, 1000, 128):
        acc.add(given[start : start + 128], p_label[start : start + 128])
    acc.add(np.array([1]), np.array([np.nan]))  # an unknown probability is skipped
    got = acc.thresholds()
    want = class_thresholds(given, p_label, 4)
    assert np.allclose([got[k] for k in range(4)], want)
    assert acc.counts() == {k: int((given == k).sum()) for k in range(4)}


def test_flag_sample_with_class_names_uses_the_predicted_class() -> None:
    labels = np.array(["cat", "dog", "dog"], dtype=object)
    preds = np.array(["dog", "cat", "cat"], dtype=object)
    flags, score = flag_sample(labels, preds, np.array([0.1, 0.3, 0.45]), np.array([0.9, 0.6, 0.5]),
                               {"cat": 0.55, "dog": 0.7})
    assert flags.tolist() == [True, True, False]
    assert np.allclose(score, [0.9, 0.65, 0.525])


def _old_rule(confidence: np.ndarray, p_label: np.ndarray) -> np.ndarray:
    """The fixed rule diagnose used before: the model puts >= 0.9 on another class and <= 0.05 on the label."""
    return (confidence >= 0.9) & (p_label <= 0.05)


def test_recall_of_planted_flips_with_a_real_model(example_model, example_data) -> None:
    """The bundled digits MLP, really evaluated; 10% of the labels of each held-out split flipped
    (seeded). Confident learning on the saved top-5 finds more of the flips than the fixed rule."""
    import torch

    model = torch.jit.load(str(example_model)).eval()
    found = {"old": 0, "cl": 0}
    flips = flagged_cl = 0
    for split in ("train_dev", "dev", "test"):
        d = torch.load(example_data / f"{split}.pt", weights_only=True)
        x = d["x"].float() / 255 if d["x"].dtype == torch.uint8 else d["x"].float()
        with torch.no_grad():
            p = torch.softmax(model(x), dim=1).double().numpy()
        y = d["y"].numpy()
        n = len(y)
        for seed in range(3):
            rng = np.random.default_rng(seed)
            flipped = rng.random(n) < 0.1
            given = y.copy()
            given[flipped] = (y[flipped] + rng.integers(1, 10, flipped.sum())) % 10
            p_label = p[np.arange(n), given]
            top = np.argsort(-p, axis=1)[:, :5]
            cl, _ = confident_issues(given, p_label, top, np.take_along_axis(p, top, axis=1),
                                     class_thresholds(given, p_label, 10))
            found["cl"] += int((cl & flipped).sum())
            found["old"] += int((_old_rule(p.max(axis=1), p_label) & flipped).sum())
            flips += int(flipped.sum())
            flagged_cl += int(cl.sum())
    recall_old, recall_cl = found["old"] / flips, found["cl"] / flips
    # Measured: recall 0.53 before, 0.74 after (238 flips over 9 draws); 48% of the flags are flips.
    assert recall_cl >= recall_old + 0.15, (recall_old, recall_cl)
    assert found["cl"] / flagged_cl > 0.4


def test_nearest_neighbours_are_sklearns_cosine_neighbours() -> None:
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(8)
    pool = rng.normal(size=(500, 12))
    rows = np.array([0, 7, 123, 499])
    theirs = NearestNeighbors(n_neighbors=NEIGHBOURS + 1, metric="cosine", algorithm="brute").fit(pool)
    _, idx = theirs.kneighbors(pool[rows])
    for block in (65536, 64, 7):
        ours = nearest_neighbours(pool[rows], rows, pool, NEIGHBOURS, block=block)
        assert np.array_equal(ours, idx[:, 1:])  # the row itself (its own nearest) is left out
    # A query that is not in the pool keeps every pool row; fewer pool rows than k: -1 fills.
    outside = nearest_neighbours(pool[:1], np.array([-1]), pool, 3)
    assert outside[0, 0] == 0
    short = nearest_neighbours(pool[:1], np.array([0]), pool[:3], 5)
    assert short[0].tolist()[2:] == [-1, -1, -1] and set(short[0, :2].tolist()) == {1, 2}


def test_neighbour_issues_by_hand() -> None:
    labels = np.array([0, 0, 1, 2, 1, 0])
    preds = np.array([1, 1, 0, 0, 1, 2])
    neighbour_labels = np.array([
        [1, 1, 1, 2],     # no neighbour labelled 0, most are 1: flagged
        [0, 1, 1, 1],     # one neighbour shares the label: not flagged (a shifted item among its peers)
        [2, 2, 0, 3],     # none is 1, class 2 holds half of them: flagged
        [1, 3, 0, 4],     # none is 2, no class holds half: flagged only because the model is confident
        [0, 0, 0, 0],     # predicted as its label: never flagged
        [-1, -1, -1, -1],  # no neighbours: not flagged
    ])
    confident = np.array([False, True, False, True, True, True])
    flags, share = neighbour_issues(labels, preds, neighbour_labels, confident)
    assert flags.tolist() == [True, False, True, True, False, False]
    assert share.tolist() == [0.0, 0.25, 0.0, 0.0, 0.0, 0.0]
    flags, _ = neighbour_issues(labels, preds, neighbour_labels, np.zeros(6, dtype=bool))
    assert flags.tolist() == [True, False, True, False, False, False]


@pytest.mark.slow
def test_suspects_on_a_shifted_split_are_mostly_flips() -> None:
    """A real MLP on digits; dev rotated and darker with 8% of labels flipped (fixtures/shifted_digits.py).
    Judged as `diagnose errors` judges: thresholds of train_dev, then the labels of the 8 nearest dev
    items by the features of the MLP's hidden layer; 50 misclassified dev items drawn per draw.
    Measured over draws 4-11 (bench/label_suspects.py): precision 0.79, recall 0.81 pooled; the worst
    single draw 0.69 precision, 0.56 recall. Today's rule (thresholds of dev) had precision 0.24."""
    import torch

    from fixtures.shifted_digits import digits_case

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    hit = flagged = planted = 0
    try:
        for seed in range(4, 12):
            case = digits_case(seed)
            p, labels, flips = case["p"], case["labels"], case["flips"]
            n = len(labels)
            ref_labels = case["labels_ref"]
            ref_thr = class_thresholds(ref_labels, case["p_ref"][np.arange(len(ref_labels)), ref_labels], 10)
            top = np.argsort(-p, axis=1)[:, :5]
            confident, _ = confident_issues(labels, p[np.arange(n), labels], top, np.take_along_axis(p, top, axis=1), ref_thr)
            nb = nearest_neighbours(case["features"], np.arange(n), case["features"])
            flags, _ = neighbour_issues(labels, p.argmax(1), labels[nb], confident)
            wrong = np.flatnonzero(p.argmax(1) != labels)
            sample = np.random.default_rng(1000 + seed).choice(wrong, min(50, len(wrong)), replace=False)
            hit += int((flags[sample] & flips[sample]).sum())
            flagged += int(flags[sample].sum())
            planted += int(flips[sample].sum())
    finally:
        torch.set_num_threads(threads)
    assert hit / flagged >= 0.6, (hit, flagged)
    assert hit / planted >= 0.7, (hit, planted)


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), classes=st.integers(2, 8), n=st.integers(20, 300),
       peak=st.floats(0.0, 6.0), flip=st.floats(0.0, 0.5))
def test_fuzzed_probabilities_agree_with_cleanlab(seed: int, classes: int, n: int, peak: float, flip: float) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    y[:classes] = np.arange(classes)  # every class labelled at least once (cleanlab warns otherwise)
    logits = rng.normal(0, 1, (n, classes))
    logits[np.arange(n), y] += peak
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    flipped = rng.random(n) < flip
    given_labels = y.copy()
    given_labels[flipped] = (y[flipped] + rng.integers(1, classes, flipped.sum())) % classes
    given_labels[:classes] = np.arange(classes)
    ours, score = confident_issues_full(given_labels, p)
    theirs = cleanlab_filter.find_label_issues(given_labels, p, filter_by="confident_learning", n_jobs=1)
    assert np.array_equal(ours, theirs)
    assert ((score >= 0) & (score <= 1)).all()
