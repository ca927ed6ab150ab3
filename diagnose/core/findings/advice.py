"""The advice each finding gives: text users read, reviewed like user interface."""

from __future__ import annotations

ADVICE = {
    "diverged": "lower the learning rate (by 10x to start), add gradient clipping, check the inputs and "
    "the loss for NaN/inf; a learning-rate warmup helps large models",
    "diverged_start": "the loss was never finite: check the inputs for NaN/inf (a missing value in a feature, a "
    "division by zero in preprocessing), the loss for a log of zero, and the initialization; then lower the "
    "learning rate",
    "memorizing": "the training set is learned but nothing carries over: check that the labels match the "
    "inputs (a shuffled or misaligned label file, a wrong join), and that training and validation go through "
    "the same input pipeline (normalization, resizing, tokenizer); early stopping does not help here",
    "noisy_val": "the validation set is too small (or sampled anew each time) to rank epochs: validate on "
    "more items, the same items every time, or average several evaluations",
    "not_learning": "the learning rate is far off: try 10x lower and 10x higher; then run `diagnose sanity` "
    "(can the model overfit one batch? are the labels and the loss right?)",
    "not_learning_high": "the learning rate is far too high (the loss blew up before it settled): divide it "
    "by 10-100 or add a warm-up; then run `diagnose sanity` (can the model overfit one batch? are the labels "
    "and the loss right?)",
    "lr_too_high": "divide the learning rate by 3-10, or decay it (step, cosine); the loss should then "
    "keep falling past the level it sits at now",
    "unstable": "divide the learning rate by 3-10 (or add a warm-up and gradient clipping); the loss "
    "should then fall without jumping back up",
    "lr_too_low": "raise the learning rate by 3-10x (a learning-rate range test finds the largest "
    "stable value); the curve should bend down early instead of falling in a straight line",
    "noisy": "use a bigger batch (or accumulate gradients) or a lower learning rate; the spread shrinks "
    "roughly as 1/sqrt(batch size)",
    "overfitting": "stop at the best epoch (early stopping with restore-best), and add regularization: "
    "L2 / weight decay, dropout, data augmentation, or more data",
    "gap": "a generalization (variance) gap: add regularization (weight decay, dropout, augmentation) or "
    "more data; `diagnose gaps` measures it with intervals against train-dev and dev",
    "underfitting": "the model cannot fit the training data: use a bigger model (wider or deeper, no "
    "bottleneck), train longer, reduce regularization",
    "underfitting_improving": "the model is still learning but fits the training data poorly: train longer, "
    "and use a bigger model (wider or deeper, no bottleneck); reduce regularization",
    "plateau": "divide the learning rate by 2-5 when validation stops improving (ReduceLROnPlateau), "
    "or use a step or cosine schedule",
    "still_improving": "validation is still improving: train longer",
    "schedule": "",
    "healthy": "",
    "cannot_tell": "log a validation loss (and accuracy) every epoch, or train longer, so every check has "
    "enough points to judge",
    "too_short": "log more evaluations (or train longer) before reading the curves",
    "no_curves": "",
}
