"""The thresholds the findings judge by, each with where it comes from."""

from __future__ import annotations

# --- thresholds ------------------------------------------------------------------------------------

# A loss that climbs this far above its starting level has diverged. The Deep Learning Tuning
# Playbook ("training instability") treats a loss rising well above its initial value as the sign
# that updates are too large; 3x keeps a noisy but stable start from counting.
DIVERGE_FACTOR = 3.0
# Less than this relative decrease from the start over the whole run: not learning. SageMaker
# Debugger's LossNotDecreasing rule compares the loss over a window against a percentage
# (`diff_percent`); 10% over the whole run is our reading of "not decreasing". A decrease larger than
# NOT_LEARNING_NOISE x the point-to-point noise is real progress even when small (a fine-tune, or a
# segment late in a long run), so it does not count as "not learning".
NOT_LEARNING_DROP = 0.10
NOT_LEARNING_NOISE = 3.0
# At chance: a C-class classifier that predicts the uniform distribution scores cross-entropy ln C
# and accuracy 1/C (CS231n notes, "Neural Networks Part 3": "look for correct loss at chance
# performance", 2.302 for CIFAR-10; the "verify loss @ init" step of Karpathy's "A Recipe for
# Training Neural Networks", 2019).
# A loss within CHANCE_MARGIN of ln C, with the accuracy within CHANCE_ACC_MARGIN of 1/C, is chance.
CHANCE_MARGIN = 0.05
CHANCE_ACC_MARGIN = 0.25  # relative to 1/C, or 0.05 absolute, whichever is larger
# When C is inferred from the loss alone, its first value must lie this close to ln C (relative):
# the values ln 2, ln 3, ln 4 ... are far apart for the small C where the inference means something.
CHANCE_START_MARGIN = 0.01
# A model that predicts one class: one exact accuracy value repeated in at least this share of the
# evaluations (an accuracy that never moves off the majority share), with the training accuracy no
# more than PINNED_TRAIN_ABOVE above it and the training loss down by less than PINNED_MAX_DROP.
PINNED_SHARE = 0.4
PINNED_TRAIN_ABOVE = 0.05
PINNED_MAX_DROP = 0.3
# A first loss this many times ln C is "orders of magnitude above chance": the initial updates blew
# the weights up (the Deep Learning Tuning Playbook, "training instability": instability early in
# training calls for a lower learning rate or a learning-rate warm-up).
EXPLODED_START = 100.0
# Instability at a constant learning rate: the loss jumps to JUMP_FACTOR x its best so far, by at
# least JUMP_HEIGHT x its starting level, and then comes back below RECOVER_FACTOR x that best,
# again and again (JUMPS_UNSTABLE or more jumps). The Tuning Playbook's "training instability"
# section describes these loss spikes at a learning rate near the edge of stability.
JUMP_FACTOR = 2.0
JUMP_HEIGHT = 0.5
RECOVER_FACTOR = 1.5
JUMPS_UNSTABLE = 2
# Learning rate too high (the Tuning Playbook and Smith, "Cyclical Learning Rates", 2017: a learning
# rate above the stable range makes the loss fall quickly, then stall or oscillate at a poor level):
# the loss ends at least this fraction of its start ...
HIGH_PLATEAU_LEVEL = 0.1
# ... and made no progress after its early drop: the smoothed loss (span ~1/20 of the run) averages at
# least REBOUND_HALF x its first-half minimum over the second half and ends no lower than
# REBOUND_END x that minimum. Healthy fixtures and real logs measure <= 0.96 / 1.05 (a step
# schedule); Adam at lr 0.1 measures 1.05 / 1.54.
REBOUND_END = 1.0
REBOUND_HALF = 1.2
# Learning rate too low (Karpathy's CS231n notes, "Babysitting the learning process": a low learning
# rate gives a nearly linear loss curve): a straight line explains this much of the smoothed loss
# (R^2) and the first half of the run made no more than this share of the total decrease (an
# exponential-looking healthy curve makes most of its progress early).
LINEAR_R2 = 0.95
LINEAR_FIRST_HALF_SHARE = 0.65
# Noisy batches (McCandlish et al., "An Empirical Model of Large-Batch Training", 2018: the gradient
# noise scales as 1/batch size): the per-step loss's standard deviation exceeds this multiple of its
# mean in the middle of training (windows from 10% to 50% of the run). Batch-32 runs measure 0.3-0.6
# on the fixtures and up to 1.0 on real Lightning logs; batch 1 measures 3.7.
NOISY_SPREAD = 1.5
# Overfitting: validation loss this far above its minimum (relative) while training loss keeps
# falling; Keras/Lightning EarlyStopping monitor the same minimum (patience counts evaluations).
OVERFIT_RISE = 0.10
# ... or a train-validation accuracy gap this large at the end (the last third of the run). Ng's
# "Machine Learning Yearning" (ch. 21) reads a 1% training vs 11% dev error as high variance: ten
# points. A gap that grows is overfitting in progress; a stable one is a generalization gap.
OVERFIT_ACC_GAP = 0.10
GAP_GROWING = 0.02
# ... or validation loss that stopped improving early and never again while training loss kept falling:
# its best is in the first STALL_EARLY share of the evaluations, at least STALL_PATIENCE evaluations
# (Keras EarlyStopping would have stopped after its patience) follow without a better one, and
# training loss fell at least STALL_TRAIN_DROP (relative) after the best, to below validation's best.
# The extra training only fit the training set: the train-validation gap grew. Not judged while validation accuracy still peaks
# late (label smoothing can hold the loss flat while accuracy rises).
STALL_EARLY = 0.25
STALL_PATIENCE = 10
STALL_TRAIN_DROP = 0.20
# Underfitting ("high bias" in Machine Learning Yearning, ch. 21: training error high, dev error close
# to it): training accuracy below this and the gap below UNDERFIT_GAP. Judged whether or not the
# loss still improves: a run at 28% is never fine.
UNDERFIT_ACC = 0.80
UNDERFIT_GAP = 0.05
# Plateau: no improvement larger than PLATEAU_MIN_DELTA (relative) over the last `patience`
# evaluations. Keras ReduceLROnPlateau and torch's ReduceLROnPlateau use patience=10 by default;
# short runs use a quarter of their evaluations (at least 3).
PLATEAU_PATIENCE = 10
PLATEAU_MIN_DELTA = 0.01
# Still improving: the best value is in the last tenth of the run and the last quarter improved by
# more than this (relative).
STILL_IMPROVING_DELTA = 0.02
# A learning-rate step: a fall by at least this factor between two logged values (StepLR/MultiStepLR
# default gamma 0.1; ReduceLROnPlateau's default factor 0.1, Keras users often pass 0.5).
LR_STEP_FACTOR = 2.0
# Fewer training-loss points than this and the shape of the curve is not judged.
MIN_POINTS = 10
# A finding judged on evaluations (gaps, accuracy, jumps) needs this many points of its own series;
# a shape finding on a per-step curve also needs MIN_EPOCHS epochs when the log counts them (three
# epochs of a healthy run can look like anything).
MIN_EVALS = 5
MIN_EPOCHS = 5
# Smoothing for the trend: TensorBoard's default scalar smoothing weight.
TREND_SMOOTHING = 0.6

# --- thresholds in noise units or relative terms -----------------------------------------------------
# The noise of a series is the robust scale of its successive differences (measure.robust_noise); a
# change smaller than a few noise units is indistinguishable from the point-to-point scatter (3 noise
# units is the usual control-chart limit: Montgomery, "Introduction to Statistical Quality Control",
# Shewhart charts). Every threshold below is stated in those units or as a share of the series' own
# progress (start level minus best), never as an absolute loss value.
#
# A loss that is non-finite from its first point, with at least this share of its points non-finite,
# never trained: diverged (a NaN input or a blown-up initialization).
NONFINITE_SHARE = 0.5
# Jumps against the running best: at least JUMP_NOISE noise units above the best so far, at least
# JUMP_SHARE of the progress made so far (the start minus the running best) and at least JUMP_REL
# above the best (relative: to twice the best, as the Playbook's spikes), coming back within RECOVER_SHARE of the jump's height; JUMPS_UNSTABLE or
# more of them is instability (the Tuning Playbook's loss spikes near the edge of stability).
JUMP_NOISE = 4.0
JUMP_SHARE = 0.25
JUMP_REL = 1.0
RECOVER_SHARE = 0.5
# A training loss that climbs back after its best by CLIMB_NOISE noise units and CLIMB_SHARE of the
# progress it had made: the updates undo the fit (a training loss only rises on its own when the step
# is too large; overfitting shows on validation, never on training loss).
# The progress itself must be CLIMB_PROGRESS noise units or more: a flat stretch has no best to lose.
CLIMB_NOISE = 5.0
CLIMB_SHARE = 0.25
CLIMB_PROGRESS = 10.0
# Overfitting by validation loss: the mean of the last OVERFIT_TAIL evaluations is OVERFIT_NOISE noise
# units and OVERFIT_REL (relative) above the best (a lucky low evaluation of a noisy curve does not
# count: the noise of such a curve is large, so its rise is few noise units), with OVERFIT_AFTER or more evaluations after the
# best (Keras EarlyStopping's `min_delta` with a short patience), while training loss kept falling.
OVERFIT_NOISE = 3.0
OVERFIT_REL = 0.05
OVERFIT_AFTER = 2
OVERFIT_TAIL = 3
# Validation that never learned while training loss fell (labels that do not match the inputs): the
# validation loss never gets more than MEMO_GAIN (relative) below its first value and the validation
# accuracy never gains more than MEMO_GAIN of its headroom (1 - its first value), while the training
# loss, which started at the same level (within MEMO_SAME_START, relative: one fresh model scored on
# both splits), fell to MEMO_TRAIN_END of its start or lower, by MEMO_TRAIN_NOISE noise units or more.
MEMO_GAIN = 0.10
MEMO_TRAIN_END = 0.9
MEMO_TRAIN_NOISE = 10.0
MEMO_SAME_START = 0.15
# Underfitting: the training loss ends above UNDER_LEVEL of its start and the validation loss is
# within UNDER_GAP (relative) of it (without a validation loss: the train-validation accuracy gap is
# within UNDER_GAP of the training error): the model fits the training set no better than unseen data.
# Still improving: the slope of the last third of the training loss is below zero by UNDER_SLOPE_SE
# standard errors.
UNDER_LEVEL = 0.4
UNDER_GAP = 0.5
# With a training accuracy, its error must also still be UNDER_ERROR or more of its error at the start
# (a binary task's loss floor is a large share of ln 2, its accuracy error is not).
UNDER_ERROR = 0.35
UNDER_SLOPE_SE = 2.0
# Noisy validation: the validation curve's noise is at least NOISY_VAL of the larger of the progress
# it makes (start minus best) and its level at the end, so single evaluations cannot rank the epochs.
# Calibrated on the population's calibration families: a full validation set measures at most 0.01,
# one scored on a fresh draw of a few items each time 0.03 and up.
NOISY_VAL = 0.02
# C from a starting loss at ln C is trusted only while neighbouring ln C are at least
# CHANCE_START_SEPARATION x CHANCE_START_MARGIN apart (relative): 1/(C ln C) >= 4%, C <= 10.
CHANCE_START_SEPARATION = 4.0
