"""Hidden checks of lesson 06's multi-task losses (rpn_loss, head_loss); `l06_detection.parts` adds them
after smooth_l1's part.

Cases: random logits, deltas and targets with |deltas - targets| on both sides of 1 (both pieces of
smooth L1), box_weight 1 and another, float64 and float32; no positive anchors, only positives and
one anchor; for the head, no foreground regions, every class present and one region; logits of
+-1000 and +-60 (where a naive log or exp is inf, 0 or NaN). The negatives' and background
regions' target rows are random, not zeros, so a box term on them shows.

Each diagnose() recomputes typical bugs with the small implementations below (written here, not
from the reference) and names the one the student's whole result matches: the box term on negatives
or background regions (label 0 reads box_deltas[r, -1], the last class), divided by the number of
positives or foreground regions, nothing divided, the gradient's sign flipped or the one-hot not
subtracted, log(p + 1e-12), the right formula on a wrong smooth_l1.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from autograder.checks._l06_tracking import _smooth_l1
from autograder.grader.spec import Case, Part, Raised, Tol

BugList = Iterator[tuple[str, Callable[[], Any]]]

# the smooth_l1 bugs of _l06_tracking, as functions of z: a loss right on top of one is the smooth_l1's fault
_WRONG_SMOOTH_L1 = (dict(offset=0.0), dict(half=1.0, grad_scale=2.0), dict(half=1.0), dict(threshold=0.5),
                    dict(threshold=2.0), dict(grad_sign=False))
_FIX_SMOOTH_L1 = "{func} is right, but on a wrong smooth_l1: fix smooth_l1 (its test names the bug)"
_NOT_FINITE = {"rpn_loss": "rpn_loss gives inf or NaN for large logits: write -log sigmoid(x) as np.logaddexp(0, -x) "
                           "and -log(1 - sigmoid(x)) as np.logaddexp(0, x)",
               "head_loss": "head_loss gives inf or NaN for large logits: subtract each row's maximum before np.exp "
                            "(log-sum-exp)"}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


# ---------------------------------------------------------------- the RPN's loss and its bugs
def _rpn(x, deltas, labels, targets, weight, sl1=_smooth_l1, box_rows="positives", box_norm="sampled",
         norm=True, sign=1.0, eps=None):
    """rpn_loss with switchable bugs: box_rows 'all' puts a box term on negatives, box_norm 'positives'
    divides it by P, norm=False divides nothing, sign=-1 flips d_objectness, eps = log(p + eps)."""
    x, deltas, targets = (np.asarray(a, dtype=np.float64) for a in (x, deltas, targets))
    y = (np.asarray(labels) == 1).astype(np.float64)
    S, P = len(x), int(y.sum())
    if eps is None:
        logistic = y * np.logaddexp(0.0, -x) + (1 - y) * np.logaddexp(0.0, x)
    else:
        p = _sigmoid(x)
        logistic = -(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
    rows = y == 1 if box_rows == "positives" else np.ones(S, bool)
    loss_z, grad_z = sl1(deltas[rows] - targets[rows])
    n_cls = S if norm else 1
    n_box = (S if box_norm == "sampled" else max(P, 1)) if norm else 1
    d_deltas = np.zeros_like(deltas)
    d_deltas[rows] = weight * grad_z / n_box
    return (float(logistic.sum() / n_cls + weight * loss_z.sum() / n_box), sign * (_sigmoid(x) - y) / n_cls, d_deltas)


def _rpn_bugs(x, deltas, labels, targets, weight) -> BugList:
    args = (x, deltas, labels, targets, weight)
    yield ("the box term counts the negative anchors too: only positive anchors (label 1) have a box to regress to",
           lambda: _rpn(*args, box_rows="all"))
    yield ("the box term is divided by the number of positives: divide both sums by S, the number of sampled anchors",
           lambda: _rpn(*args, box_norm="positives"))
    yield ("nothing is divided by S: the loss and both gradients are means over the S sampled anchors",
           lambda: _rpn(*args, norm=False))
    yield ("d_objectness has the wrong sign: the logistic loss's gradient is (p - y) / S, p = sigmoid(x)",
           lambda: _rpn(*args, sign=-1.0))
    yield ("the loss uses log(p + 1e-12), which caps a confident wrong anchor's cost at 27.6: use "
           "np.logaddexp(0, -x) for -log sigmoid(x)", lambda: _rpn(*args, eps=1e-12))
    for bug in _WRONG_SMOOTH_L1:
        yield (_FIX_SMOOTH_L1.format(func="rpn_loss"), lambda bug=bug: _rpn(*args, sl1=lambda z: _smooth_l1(z, **bug)))


def _rpn_tols(x, deltas, labels, targets, weight) -> tuple[Tol, Tol, Tol]:
    """Each logistic term log(1 + e^(-+x)) is a log of a number >= 1 (an error of a few u, absolute) after
    an exp of x (relative, of size |x|); sigmoid(x) carries u (1 + |x|) relative, and p - y is a
    difference of numbers in [0, 1], which formulas reaching p as 1 - something (tanh, 1 - sigmoid(-x))
    compute with a few u absolute: hence the 1; each smooth L1 term one subtraction of deltas and
    targets. The sums run over at most 5 S terms."""
    x, deltas, targets = (np.asarray(a, dtype=np.float64) for a in (x, deltas, targets))
    y = (np.asarray(labels) == 1).astype(np.float64)
    S = len(x)
    logistic = y * np.logaddexp(0.0, -x) + (1 - y) * np.logaddexp(0.0, x)
    box = weight * (1 + np.abs(deltas) + np.abs(targets)) * y[:, None]
    loss = (np.sum(1 + np.abs(x) + logistic) + np.sum(box)) / S
    return (Tol(loss, 5 * S + 10), Tol((1 + _sigmoid(x) * (1 + np.abs(x)) + y) / S, 8), Tol(box / S, 6))


def _rpn_inputs(rng: np.random.Generator) -> list[tuple]:
    def draw(S, P, scale=2.0, dtype=np.float64):
        labels = rng.permutation(np.r_[np.ones(P, dtype=np.int64), np.zeros(S - P, dtype=np.int64)])
        deltas, targets = rng.normal(0, 1.2, (S, 4)), rng.normal(0, 0.6, (S, 4))
        return rng.normal(0, scale, S).astype(dtype), deltas.astype(dtype), labels, targets.astype(dtype)
    large = draw(8, 4)
    large[0][:] = [1000., -1000., 60., -60., -1000., 1000., -60., 60.]
    large[2][:] = [1, 1, 1, 1, 0, 0, 0, 0]
    return [(*draw(16, 5), 1.0, "16 sampled anchors, 5 positive"),
            (*draw(24, 9, scale=4.0), 2.5, "24 anchors, 9 positive, box_weight 2.5"),
            (*draw(12, 4, dtype=np.float32), 1.0, "12 anchors, 4 positive, float32"),
            (*draw(10, 0), 1.0, "10 anchors, no positive"),
            (*draw(6, 6), 1.0, "6 anchors, all positive"),
            (*draw(1, 1), 0.5, "one positive anchor, box_weight 0.5"),
            (*large, 1.0, "logits of +-1000 and +-60 on both sides of their labels")]


def _rpn_part(ref, rng, first_match) -> Part:
    cases = [Case("rpn_loss", args, expected=tuple(ref.rpn_loss(*args)), tol=_rpn_tols(*args), label=label)
             for *args, label in _rpn_inputs(rng)]
    return Part("test_rpn_loss", cases, lambda case, actual: _diagnose(case, actual, _rpn_bugs, first_match))


# ---------------------------------------------------------------- the head's loss and its bugs
def _head(z, box_deltas, labels, targets, weight, sl1=_smooth_l1, box_rows="foreground", class_offset=-1,
          box_norm="regions", norm=True, onehot=True, sign=1.0, eps=None):
    """head_loss with switchable bugs: box_rows 'all' gives background regions a box term on
    box_deltas[r, -1], box_norm 'foreground' divides it by F, norm=False divides nothing, onehot=False
    leaves the one-hot out of the gradient, sign=-1 flips it, eps = log(p + eps)."""
    z, box_deltas, targets = (np.asarray(a, dtype=np.float64) for a in (z, box_deltas, targets))
    labels = np.asarray(labels)
    R = len(z)
    top = z.max(axis=1, keepdims=True)
    log_total = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    truth = np.eye(z.shape[1])[labels]
    probs = np.exp(z - log_total[:, None])
    cross_entropy = log_total - z[np.arange(R), labels] if eps is None else -np.log((probs * truth).sum(axis=1) + eps)
    rows = np.flatnonzero(labels > 0) if box_rows == "foreground" else np.arange(R)
    classes = labels[rows] + class_offset
    loss_z, grad_z = sl1(box_deltas[rows, classes] - targets[rows])
    n_cls = R if norm else 1
    n_box = (R if box_norm == "regions" else max(int(np.sum(labels > 0)), 1)) if norm else 1
    d_box = np.zeros_like(box_deltas)
    np.add.at(d_box, (rows, classes), weight * grad_z / n_box)
    d_class = sign * (probs - (truth if onehot else 0.0)) / n_cls
    return float(cross_entropy.sum() / n_cls + weight * loss_z.sum() / n_box), d_class, d_box


def _head_bugs(z, box_deltas, labels, targets, weight) -> BugList:
    args = (z, box_deltas, labels, targets, weight)
    yield ("background regions got a box term: box_deltas[r, labels[r] - 1] with label 0 reads the LAST class "
           "(index -1); only foreground regions (label >= 1) have a box term", lambda: _head(*args, box_rows="all"))
    yield ("the box term is divided by the number of foreground regions: divide both sums by R, the number of "
           "regions", lambda: _head(*args, box_norm="foreground"))
    yield ("nothing is divided by R: the loss and both gradients are means over the R regions",
           lambda: _head(*args, norm=False))
    yield ("the one-hot of the true class is not subtracted: the gradient is (softmax - onehot(labels)) / R",
           lambda: _head(*args, onehot=False))
    yield ("d_class_logits has the wrong sign: the gradient is (softmax - onehot(labels)) / R",
           lambda: _head(*args, sign=-1.0))
    yield ("the loss uses log(p + 1e-12), which caps a confident wrong region's cost at 27.6: compute "
           "-log softmax with log-sum-exp", lambda: _head(*args, eps=1e-12))
    for bug in _WRONG_SMOOTH_L1:
        yield (_FIX_SMOOTH_L1.format(func="head_loss"), lambda bug=bug: _head(*args, sl1=lambda z: _smooth_l1(z, **bug)))


def _head_tols(z, box_deltas, labels, targets, weight) -> tuple[Tol, Tol, Tol]:
    """log-sum-exp: the shift by the row's maximum and the log of a sum >= 1 carry a few u of
    1 + 2 max|z| (absolute); each softmax entry u (1 + 2 max|z| + K + 1) relative; each smooth L1 term
    one subtraction. The loss sums R (K + 1) exponentials and 4 R box terms."""
    z, box_deltas, targets = (np.asarray(a, dtype=np.float64) for a in (z, box_deltas, targets))
    labels = np.asarray(labels)
    R, classes = z.shape
    spread = 1 + 2 * np.abs(z).max(axis=1)                                          # (R,)
    top = z.max(axis=1, keepdims=True)
    log_total = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    probs = np.exp(z - log_total[:, None])
    truth = np.eye(classes)[labels]
    box = np.zeros_like(box_deltas)
    fg = np.flatnonzero(labels > 0)
    box[fg, labels[fg] - 1] = weight * (1 + np.abs(box_deltas[fg, labels[fg] - 1]) + np.abs(targets[fg]))
    loss = (np.sum(spread + log_total - z[np.arange(R), labels]) + np.sum(box)) / R
    return (Tol(loss, R * (classes + 4) + 10), Tol((probs * (spread[:, None] + classes) + truth) / R, classes + 8),
            Tol(box / R, 6))


def _head_inputs(rng: np.random.Generator) -> list[tuple]:
    def draw(R, K, labels, scale=2.0, dtype=np.float64):
        z, box = rng.normal(0, scale, (R, K + 1)), rng.normal(0, 1.2, (R, K, 4))
        return z.astype(dtype), box.astype(dtype), np.asarray(labels, dtype=np.int64), rng.normal(0, 0.6, (R, 4)).astype(dtype)
    mixed = rng.permutation(np.r_[np.zeros(8, dtype=np.int64), rng.integers(1, 4, 6)])
    large = draw(6, 2, [0, 1, 2, 0, 1, 2])
    large[0][:] = [[1000., 0., -1000.], [0., 1000., 0.], [0., 1000., 0.], [-60., 60., 0.], [60., 0., 0.], [0., 0., -60.]]
    return [(*draw(14, 3, mixed), 1.0, "14 regions, 8 of them background, K = 3"),
            (*draw(12, 3, rng.integers(0, 4, 12), scale=4.0), 2.5, "12 regions, K = 3, box_weight 2.5"),
            (*draw(10, 2, rng.integers(0, 3, 10), dtype=np.float32), 1.0, "10 regions, K = 2, float32"),
            (*draw(6, 3, np.zeros(6)), 1.0, "6 background regions, no foreground"),
            (*draw(8, 4, [1, 2, 3, 4, 4, 3, 2, 1]), 1.0, "8 foreground regions of every class, K = 4"),
            (*draw(1, 3, [3]), 0.5, "one region of the last class, box_weight 0.5"),
            (*large, 1.0, "logits of 1000 and +-60 on true and wrong classes")]


def _head_part(ref, rng, first_match) -> Part:
    cases = [Case("head_loss", args, expected=tuple(ref.head_loss(*args)), tol=_head_tols(*args), label=label)
             for *args, label in _head_inputs(rng)]
    return Part("test_head_loss", cases, lambda case, actual: _diagnose(case, actual, _head_bugs, first_match))


def _diagnose(case: Case, actual: Any, bugs: Callable[..., BugList], first_match) -> str | None:
    if isinstance(actual, Raised) or not isinstance(actual, (tuple, list)) or len(actual) != 3:
        return None
    try:
        finite = all(np.all(np.isfinite(np.asarray(value, dtype=np.float64))) for value in actual)
    except (TypeError, ValueError):
        return None
    if not finite and np.abs(np.asarray(case.args[0], dtype=np.float64)).max() >= 60:
        return _NOT_FINITE[case.func]
    return first_match(tuple(actual), bugs(*case.args), case.tol)


def parts(ref, rng: np.random.Generator, first_match) -> list[Part]:
    """The parts of rpn_loss and head_loss; `first_match` is l06_detection's."""
    return [_rpn_part(ref, rng, first_match), _head_part(ref, rng, first_match)]
