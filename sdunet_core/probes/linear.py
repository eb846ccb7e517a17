"""The linear probe: standardise, then scikit-learn's multinomial logistic regression, scored on held-out images.

The recipe (stated in every result, and in the README):
- features: the point's pooled vector (`features`), masked pool for per-object targets, global for the background;
- standardisation: each feature to zero mean and unit variance on the training images (a constant feature stays 0);
- classifier: `LogisticRegression(C=C, max_iter=MAX_ITER)` (L2 penalty, lbfgs, multinomial);
- accuracy: balanced accuracy on the held-out images (the mean over classes of the share of that class's images
  classified right), so that a feature that carries nothing scores 1/k whatever the split's class counts (plain
  accuracy would give a constant guess the share of its class, a few points off 1/k on a small split);
- chance: 1/k for a target of k classes (the world draws each class with equal probability, so a guess that
  knows nothing of the picture scores 1/k on average);
- control: the same probe fitted and scored with the labels shuffled across all images before the split (the link
  between picture and label cut), averaged over CONTROL_SHUFFLES shuffles; it must sit near chance. Shuffling
  before the split, not within each side, keeps the control sensitive to a leak: a picture in both sides would
  carry its shuffled label across and lift the control above chance. Each shuffle is the same for every point,
  so the points' controls are comparable. Five shuffles, because features that fall into a few tight clusters
  (the ground's colour) turn one shuffle into a handful of coin flips: with three, a control sat 16 points below
  chance on 40 held-out images.

C is 0.1, not scikit-learn's 1: with a few hundred training images and up to 256 features a weak penalty fits
shuffled labels perfectly and then guesses at random on held-out ones, which puts the control below chance by
the spread of the classes; a firmer penalty keeps it at chance and costs real labels nothing measurable here.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

C = 0.1
MAX_ITER = 200
CONTROL_SHUFFLES = 5
CONTROL_SEED = 0


@dataclass(frozen=True)
class Score:
    accuracy: float
    control_accuracy: float
    chance: float
    n_train: int
    n_test: int


def recipe() -> dict:
    return {
        "classifier": "sklearn.linear_model.LogisticRegression (multinomial, L2, lbfgs)",
        "C": C,
        "max_iter": MAX_ITER,
        "standardisation": "StandardScaler fitted on the training images",
        "control": f"labels shuffled across all images before the split, {CONTROL_SHUFFLES} shuffles averaged",
        "accuracy": "balanced accuracy on the held-out images (mean per-class recall)",
        "chance": "1/k for k classes (the world draws the classes uniformly)",
    }


def _balanced(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The mean over the classes present in y_true of the share of their rows predicted right."""
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]))


def _fit_score(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    if len(np.unique(y_train)) < 2:  # one class only: the constant guess is all a classifier could do
        return _balanced(y_test, np.full_like(y_test, y_train[0]))
    clf = LogisticRegression(C=C, max_iter=MAX_ITER)
    # One BLAS thread: these problems are small, and threads fighting over two busy cores made each fit 10x slower.
    with threadpool_limits(1), warnings.catch_warnings():
        # A few probes stop at max_iter with a tiny gradient left; the accuracy does not change with more.
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_train, y_train)
        return _balanced(y_test, clf.predict(x_test))


def standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x_train.mean(0)
    std = x_train.std(0)
    std[std < 1e-6 * (1 + np.abs(mean))] = np.inf  # a constant feature carries nothing: it becomes 0
    return (x_train - mean) / std, (x_test - mean) / std


def probe(x: np.ndarray, y: np.ndarray, test: np.ndarray, classes: int) -> Score:
    """Accuracy, control and chance of a linear probe of features x [N, D] for labels y [N] in 0..classes-1
    (test: the held-out rows)."""
    x_train, x_test = standardise(x[~test].astype(np.float64), x[test].astype(np.float64))
    y_train, y_test = y[~test], y[test]
    accuracy = _fit_score(x_train, y_train, x_test, y_test)
    rng = np.random.default_rng(CONTROL_SEED)
    shuffles = [y[rng.permutation(len(y))] for _ in range(CONTROL_SHUFFLES)]
    control = np.mean([_fit_score(x_train, ys[~test], x_test, ys[test]) for ys in shuffles])
    return Score(accuracy, float(control), 1.0 / classes, len(y_train), len(y_test))


def as_dict(score: Score) -> dict:
    return asdict(score)
