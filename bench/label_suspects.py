"""Precision and recall of the suspect mislabels of `diagnose errors` on shifted splits with planted
label flips, against confident learning with thresholds of the analysed split and against a ranking
by the probability given to the label.

    python bench/label_suspects.py            # about a minute on 2 cores

Cases:
- shapes: the bundled image project (fixtures/make_project.py, its default build): dev holds rotated
  and darker items and a few flipped labels. Run through the real commands (`diagnose gaps`, then
  `diagnose errors --sample 50 --json`, with and without `--neighbours`) and scored against planted.json.
- digits: scikit-learn's 8x8 digits, a torch MLP trained on 60% of them (3% of labels flipped),
  train_dev 20% (3% flipped), dev 20% with 30% of the items rotated by 20 to 35 degrees, 20% darkened
  to 45% and 8% of the labels flipped; 50 misclassified dev items drawn per draw. Draws 0-3 set the
  constants of core.labelissues (NEIGHBOURS, "no neighbour shares the label"); draws 4-11 are reported
  apart from them.
- digits, no shift: the same with dev drawn like training (no rotation, no darkening).
- example, no shift: the bundled digits model (fixtures/example, TorchScript: no features to read, so
  the thresholds of train_dev alone), 10% of the labels of train_dev, dev and test flipped, three draws,
  every misclassified item judged (as tests/test_labelissues.py measures today's rule).

Precision: flagged rows that are planted flips / flagged rows. Recall: flagged planted flips / planted
flips among the sampled rows. `p_label ranking` flags the sampled rows with the lowest probability of
their label, as many as it takes to reach 70% recall, and gives the precision there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diagnose.core.labelissues import (  # noqa: E402
    NEIGHBOURS,
    class_thresholds,
    confident_issues,
    confident_issues_full,
    nearest_neighbours,
    neighbour_issues,
)
from fixtures.shifted_digits import digits_case  # noqa: E402

SAMPLE = 50
CALIBRATION = range(0, 4)
REPORTED = range(4, 12)


def judge(case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Flags over every item of dev: today's rule (thresholds of dev), thresholds of train_dev alone,
    and the rule of `diagnose errors` (train_dev thresholds and neighbours)."""
    p, labels = case["p"], case["labels"]
    n, c = p.shape
    p_label = p[np.arange(n), labels]
    order = np.argsort(-p, axis=1)[:, :5]
    top_p = np.take_along_axis(p, order, axis=1)
    today, _ = confident_issues_full(labels, p)
    ref_thr = class_thresholds(case["labels_ref"], case["p_ref"][np.arange(len(case["labels_ref"])), case["labels_ref"]], c)
    ref, _ = confident_issues(labels, p_label, order, top_p, ref_thr)
    nb = nearest_neighbours(case["features"], np.arange(n), case["features"], NEIGHBOURS)
    new, _ = neighbour_issues(labels, p.argmax(1), np.where(nb >= 0, labels[nb], -1), ref)
    return {"today (thresholds of dev)": today, "thresholds of train_dev": ref, "diagnose errors": new}


def ranking_precision(p_label: np.ndarray, flips: np.ndarray, recall: float = 0.7) -> float:
    """Precision of flagging the lowest-p_label rows, as many as reach `recall` of the flips."""
    order = np.argsort(p_label, kind="stable")
    found = np.cumsum(flips[order])
    need = int(np.ceil(recall * flips.sum()))
    if need == 0:
        return float("nan")
    k = int(np.argmax(found >= need)) + 1
    return need / k


def score_digits(seeds: range, *, shift: bool) -> dict[str, tuple[int, int, int]]:
    """Method -> (flagged flips, flagged, flips) summed over the draws; plus the ranking's precision."""
    totals: dict[str, list[int]] = {}
    ranking: list[float] = []
    worst: dict[str, tuple[float, float]] = {}
    for seed in seeds:
        case = digits_case(seed, shift=shift)
        p, labels, flips = case["p"], case["labels"], case["flips"]
        wrong = np.flatnonzero(p.argmax(1) != labels)
        rng = np.random.default_rng(1000 + seed)
        sample = rng.choice(wrong, min(SAMPLE, len(wrong)), replace=False)
        for name, flags in judge(case).items():
            t = totals.setdefault(name, [0, 0, 0])
            hit, flagged, planted = int((flags[sample] & flips[sample]).sum()), int(flags[sample].sum()), int(flips[sample].sum())
            t[0] += hit
            t[1] += flagged
            t[2] += planted
            prec, rec = hit / max(flagged, 1), hit / max(planted, 1)
            w = worst.get(name, (1.0, 1.0))
            worst[name] = (min(w[0], prec), min(w[1], rec))
        ranking.append(ranking_precision(p[sample, labels[sample]], flips[sample]))
    for name, (hit, flagged, planted) in totals.items():
        print(f"  {name:28s} precision {hit / max(flagged, 1):.2f} ({hit}/{flagged})  recall {hit / max(planted, 1):.2f} "
              f"({hit}/{planted})  worst draw: precision {worst[name][0]:.2f}, recall {worst[name][1]:.2f}")
    print(f"  {'p_label ranking':28s} precision {np.nanmean(ranking):.2f} at 70% recall (mean over draws)")
    return {k: (v[0], v[1], v[2]) for k, v in totals.items()}


def score_shapes() -> None:
    """The bundled project through the real commands."""
    sys.path.insert(0, str(ROOT / "fixtures"))
    from make_project import build_project

    script = Path(sys.executable).with_name("diagnose")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "diagnose"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="label-suspects-") as tmp:
        root = build_project(Path(tmp) / "shapes")
        subprocess.run([*cmd, "gaps", "weights.pt", "data"], cwd=root, env=env, check=True, capture_output=True)
        plain = json.loads(subprocess.run([*cmd, "errors", "--sample", str(SAMPLE), "--json", "--no-images", "--out", "plain.csv"],
                                          cwd=root, env=env, check=True, capture_output=True, text=True).stdout)
        out = subprocess.run([*cmd, "errors", "--sample", str(SAMPLE), "--json", "--no-images", "--neighbours"], cwd=root,
                             env=env, check=True, capture_output=True, text=True).stdout
        doc = json.loads(out)
        import pandas as pd

        sheet = pd.read_csv(root / "error_analysis.csv", encoding="utf-8-sig", keep_default_na=False)
        planted = json.loads((root / "planted.json").read_text())
        ids = sheet["id"].str.removeprefix("data/")
        flips = ids.isin(planted["flipped"]).to_numpy()
        flagged = (sheet["suspect_mislabel"] == "yes").to_numpy()
        plain_sheet = pd.read_csv(root / "plain.csv", encoding="utf-8-sig", keep_default_na=False)
        plain_flags = (plain_sheet["suspect_mislabel"] == "yes").to_numpy()
        plain_flips = plain_sheet["id"].str.removeprefix("data/").isin(planted["flipped"]).to_numpy()
        rotated, dark = ids.isin(planted["rotated"]).to_numpy(), ids.isin(planted["dark"]).to_numpy()
        dev = pd.read_parquet(root / ".diagnose" / "predictions" / "dev.parquet").set_index("index")
        probs = np.zeros((len(dev), 4))
        for k in range(1, 5):
            probs[np.arange(len(dev)), dev[f"top{k}"].to_numpy()] = dev[f"top{k}_p"].to_numpy()
        today, _ = confident_issues_full(dev["label"].to_numpy(), probs)
        today_rows = today[sheet["index"].to_numpy()]
    hit = int((flagged & flips).sum())
    p_hit = int((plain_flags & plain_flips).sum())
    print(f"  diagnose errors (no --neighbours): {int(plain_flags.sum())} rows suspect, {p_hit} flips: precision "
          f"{p_hit / max(int(plain_flags.sum()), 1):.2f}, recall {p_hit / max(int(plain_flips.sum()), 1):.2f} "
          f"(thresholds of {plain['suspect_thresholds_split']})")
    print(f"  diagnose errors --neighbours: {int(flagged.sum())} of {len(sheet)} rows suspect; {hit} of {int(flips.sum())} sampled flips "
          f"flagged: precision {hit / max(int(flagged.sum()), 1):.2f}, recall {hit / max(int(flips.sum()), 1):.2f}; "
          f"flagged rotated {int((flagged & rotated).sum())}, dark {int((flagged & dark).sum())} "
          f"(thresholds of {doc['suspect_thresholds_split']}, {doc['suspect_neighbours']} neighbours)")
    t_hit = int((today_rows & flips).sum())
    print(f"  today (thresholds of dev):  {int(today_rows.sum())} rows suspect, {t_hit} flips: precision "
          f"{t_hit / max(int(today_rows.sum()), 1):.2f}, recall {t_hit / max(int(flips.sum()), 1):.2f}; flagged rotated "
          f"{int((today_rows & rotated).sum())}, dark {int((today_rows & dark).sum())}")
    p_label = sheet["p_label"].to_numpy(dtype=float)
    print(f"  p_label ranking: precision {ranking_precision(p_label, flips):.2f} at 70% recall")


def score_example() -> None:
    """The bundled digits model, no shift: thresholds of each split itself against those of train_dev."""
    model = torch.jit.load(str(ROOT / "fixtures" / "example" / "model.pt")).eval()
    probs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in ("train_dev", "dev", "test"):
        d = torch.load(ROOT / "fixtures" / "example" / "data" / f"{split}.pt", weights_only=True)
        x = d["x"].float() / 255 if d["x"].dtype == torch.uint8 else d["x"].float()
        with torch.no_grad():
            probs[split] = (torch.softmax(model(x), dim=1).double().numpy(), d["y"].numpy())
    found = {"today (thresholds of the split)": [0, 0], "thresholds of train_dev": [0, 0]}
    flips_total = 0
    for seed in range(3):
        given: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for split, (_, y) in probs.items():
            rng = np.random.default_rng(seed)  # the draws of tests/test_labelissues.py
            flipped = rng.random(len(y)) < 0.1
            g = y.copy()
            g[flipped] = (y[flipped] + rng.integers(1, 10, flipped.sum())) % 10
            given[split] = (g, flipped)
        ref_g = given["train_dev"][0]
        ref_thr = class_thresholds(ref_g, probs["train_dev"][0][np.arange(len(ref_g)), ref_g], 10)
        for split, (p, _) in probs.items():
            g, flipped = given[split]
            n = len(g)
            p_label = p[np.arange(n), g]
            top = np.argsort(-p, axis=1)[:, :5]
            top_p = np.take_along_axis(p, top, axis=1)
            own, _ = confident_issues(g, p_label, top, top_p, class_thresholds(g, p_label, 10))
            ref, _ = confident_issues(g, p_label, top, top_p, ref_thr)
            for name, flags in (("today (thresholds of the split)", own), ("thresholds of train_dev", ref)):
                found[name][0] += int((flags & flipped).sum())
                found[name][1] += int(flags.sum())
            flips_total += int(flipped.sum())
    for name, (hit, flagged) in found.items():
        print(f"  {name:32s} precision {hit / flagged:.2f} ({hit}/{flagged})  recall {hit / flips_total:.2f} ({hit}/{flips_total})")


def main() -> None:
    torch.set_num_threads(1)
    print(f"digits, shifted dev, draws {CALIBRATION.start}-{CALIBRATION.stop - 1} (constants set on these):")
    score_digits(CALIBRATION, shift=True)
    print(f"digits, shifted dev, draws {REPORTED.start}-{REPORTED.stop - 1}:")
    score_digits(REPORTED, shift=True)
    print(f"digits, dev drawn like training, draws {REPORTED.start}-{REPORTED.stop - 1}:")
    score_digits(REPORTED, shift=False)
    print("example digits model (fixtures/example), no shift, 10% flips in train_dev, dev, test, 3 draws:")
    score_example()
    print("shapes (fixtures/make_project.py), dev rotated and darker, --sample 50:")
    score_shapes()


if __name__ == "__main__":
    main()
