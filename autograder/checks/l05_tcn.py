"""Hidden checks of lesson 05 (temporal convolutional networks).

Randomised shapes, kernel sizes K = 1..4, dilations 1..8, float64 and float32. Expected values are
the reference in float64 on the same inputs, cast to the case's dtype, judged by convlab.tolerance's
rounding bound: the magnitude of each output is the same computation on |x|, |w|, |b| (|dy|), its
length the number of products behind one output. The causality check puts two sequences that agree up to time t0 into the two batch entries of one
call and compares the two outputs here, outside the sandbox.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from autograder.checks._l05_bugs import BUGS  # noqa: F401  (the lesson's typical bugs, as students write them)
from autograder.grader.spec import Case, Part, Raised, Tol, compare, tol_for

LESSON = "05_tcn"


def _f64(*arrays):
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)


def _abs64(*arrays):
    return tuple(np.abs(a) for a in _f64(*arrays))


def forward_tol(ref, x, w, b, dilation=1) -> Tol:
    """Each output sums C_in*K products and the bias: its magnitude is the convolution of |x|, |w|, |b|."""
    return Tol(ref.conv1d_causal_forward(*_abs64(x, w, b), dilation), int(np.prod(w.shape[1:])) + 1)


def _backward_tol(ref, dy, x, w, dilation) -> tuple[Tol, Tol, Tol]:
    """dx sums C_out*K products, dw and db B*T; magnitudes: the backward pass of |dy|, |x|, |w|."""
    magnitudes = ref.conv1d_causal_backward(*_abs64(dy, x, w), dilation)
    positions = dy.shape[0] * dy.shape[-1]
    return (Tol(magnitudes[0], w.shape[0] * w.shape[-1]), Tol(magnitudes[1], positions),
            Tol(magnitudes[2], positions))


def _block_tol(ref, x, params, dilation) -> Tol:
    """The block on |x| and |params|: an error in the hidden layer reaches y through ReLU (which never
    enlarges it) and the |w2|-weighted sum, so this chain of absolute values bounds every rounding; the
    length covers both convolutions and the skip (twice, as growth(n1) + growth(n2) <= 2 growth(n1 + n2))."""
    magnitude = ref.tcn_block_forward(*_abs64(x), {k: np.abs(np.asarray(v, np.float64)) for k, v in params.items()},
                                      dilation)
    C_in, K, C_out = x.shape[1], params["w1"].shape[-1], params["w1"].shape[0]
    return Tol(magnitude, 2 * (C_in * K + C_out * K + C_in + 3))


def _label(B, C_in, C_out, T, K, dilation, dtype) -> str:
    return f"B={B}, C_in={C_in}, C_out={C_out}, T={T}, K={K}, dilation={dilation}, {np.dtype(dtype).name}"


# ---- typical bugs of the forward pass, built from the reference ------------------------------------
def _looking_ahead(ref, shift: int):
    """A conv whose output at t is the causal output at t + shift (right padding `shift` instead of left)."""
    def conv(x, w, b, dilation=1):
        T = x.shape[-1]
        x_ext = np.pad(x, ((0, 0), (0, 0), (0, shift)))
        return ref.conv1d_causal_forward(x_ext, w, b, dilation)[..., shift:shift + T]
    return conv


def _lagging(ref, per_dilation: bool):
    """A conv whose output at t is the causal output at t - shift (`shift` more zeros on the left), shift
    its dilation if per_dilation (one tap late), else 1 (one step late)."""
    def conv(x, w, b, dilation=1):
        T, shift = x.shape[-1], dilation if per_dilation else 1
        return ref.conv1d_causal_forward(np.pad(x, ((0, 0), (0, 0), (shift, 0))), w, b, dilation)[..., :T]
    return conv


def forward_bugs(ref, K: int, dilation: int) -> dict[str, Callable]:
    """Sentence naming a bug -> a conv with that bug (same signature as conv1d_causal_forward)."""
    pad = (K - 1) * dilation
    same = "non-causal padding: you padded both sides ('same' padding), so y[t] sees future inputs; " \
           "pad (K-1)*dilation zeros on the left only"
    late = "so y[t] never reads the current input x[t]; tap k's shift is (K-1-k)*dilation, 0 for tap K-1"
    lagging = {f"one step late: tap k reads x[t - 1 - (K-1-k)*dilation], {late}": _lagging(ref, per_dilation=False)}
    if dilation > 1:
        lagging[f"one tap late: tap k reads x[t - (K-k)*dilation], {late}"] = _lagging(ref, per_dilation=True)
    return lagging | {
        same: _looking_ahead(ref, pad - pad // 2),
        same + " (here split the other way round)": _looking_ahead(ref, pad // 2),
        "future indexing: tap k reads x[t + k*dilation] (padding on the right); it must read "
        "x[t - (K-1-k)*dilation]": _looking_ahead(ref, pad),
        "dilation ignored: the taps must be dilation steps apart": lambda x, w, b, dilation=1:
            ref.conv1d_causal_forward(x, w, b, 1),
        "kernel reversed: tap k must read x[t - (K-1-k)*dilation] (w[..., K-1] multiplies the current "
        "input), not x[t - k*dilation]": lambda x, w, b, dilation=1:
            ref.conv1d_causal_forward(x, w[..., ::-1], b, dilation),
        "bias missing": lambda x, w, b, dilation=1: ref.conv1d_causal_forward(x, w, np.zeros_like(b), dilation),
    }


def _matches(actual, expected, tol: Tol) -> bool:
    return isinstance(actual, np.ndarray) and tol.matches(actual, expected)


def _diagnose_forward(ref):
    def diagnose(case: Case, actual):
        x, w, b = case.args
        dilation = case.kwargs.get("dilation", 1)
        K, T = w.shape[-1], x.shape[-1]
        if isinstance(actual, np.ndarray) and actual.ndim == 3 and actual.shape[-1] == T + (K - 1) * dilation:
            return "output length T + (K-1)*dilation: you padded both sides; pad only the left, then y has length T"
        for bug, conv in forward_bugs(ref, K, dilation).items():
            if _matches(actual, conv(x, w, b, dilation), forward_tol(ref, x, w, b, dilation)):
                return bug
        return None
    return diagnose


def _random_conv_args(rng, B, C_in, C_out, T, K, dtype):
    x = rng.standard_normal((B, C_in, T)).astype(dtype)
    w = (rng.standard_normal((C_out, C_in, K)) / np.sqrt(C_in * K)).astype(dtype)
    b = rng.standard_normal(C_out).astype(dtype)
    return x, w, b


def _conv_shapes(rng) -> list[tuple]:
    """(B, C_in, C_out, T, K, dilation, dtype): plain, randomised, float32, K = 1, history longer than T."""
    r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    return [(2, 3, 4, 16, 3, 1, np.float64),
            (r(1, 3), r(1, 4), r(1, 4), r(20, 40), r(2, 4), r(2, 8), np.float64),
            (r(1, 3), r(2, 4), r(2, 4), r(20, 40), 4, 3, np.float32),
            (2, r(1, 3), r(2, 4), r(8, 16), 1, r(2, 8), np.float64),
            (1, 2, 3, 6, 3, 8, np.float64),
            (r(2, 3), r(1, 3), r(1, 3), r(30, 40), 2, 8, np.float32)]


def _forward_part(ref, rng) -> Part:
    cases = []
    for index, (B, C_in, C_out, T, K, dilation, dtype) in enumerate(_conv_shapes(rng)):
        x, w, b = _random_conv_args(rng, B, C_in, C_out, T, K, dtype)
        kwargs = {} if index == 0 else {"dilation": dilation}   # the first case relies on the default dilation=1
        expected = ref.conv1d_causal_forward(*_f64(x, w, b), **kwargs).astype(dtype)
        cases.append(Case("conv1d_causal_forward", (x, w, b), kwargs, expected=expected,
                          label=_label(B, C_in, C_out, T, K, kwargs.get("dilation", 1), dtype),
                          tol=forward_tol(ref, x, w, b, **kwargs)))
    return Part("test_conv1d_causal_forward", cases, diagnose=_diagnose_forward(ref))


# ---- causality: a property, judged here on the two batch entries of one call ------------------------
def _causality_check(t0: int, C_out: int):
    def check(actual, case: Case) -> str | None:
        name = "conv1d_causal_forward(...)"
        if isinstance(actual, Raised):
            return actual.describe("conv1d_causal_forward")
        T = case.args[0].shape[-1]
        if not isinstance(actual, np.ndarray) or actual.shape != (2, C_out, T):
            shape = actual.shape if isinstance(actual, np.ndarray) else type(actual).__name__
            return f"{name} returned {shape}, expected an array of shape {(2, C_out, T)}"
        if not np.all(np.isfinite(actual)):
            return f"{name} contains NaN or inf"
        # equal inputs may still round differently in different rows of a matrix product: each row may be
        # off by its rounding bound, so their difference by twice that
        tol = 2 * case.tol.bound(actual, actual.dtype, case.args[0].dtype)
        tol = np.maximum(tol[0], tol[1])
        change = np.abs(actual[0] - actual[1])
        if np.any(change[:, :t0 + 1] > tol[:, :t0 + 1]):
            t = int(np.argmax(change[:, :t0 + 1].max(axis=0)))
            return (f"y[:, :, {t}] changed when only inputs after t0 = {t0} changed: the output looks into the "
                    "future; pad (K-1)*dilation zeros on the left only and read x[t - (K-1-k)*dilation]")
        if np.all(change[:, t0 + 1] <= tol[:, t0 + 1]):
            return (f"y[:, :, {t0 + 1}] did not change when x[:, :, {t0 + 1}] changed: y[t] must use the current "
                    "input x[t] (tap k = K-1)")
        return None
    return check


def _causality_part(ref, rng) -> Part:
    cases = []
    for _, C_in, C_out, T, K, dilation, dtype in _conv_shapes(rng)[:4]:
        x, w, b = _random_conv_args(rng, 2, C_in, C_out, T, K, dtype)
        t0 = int(rng.integers(T // 3, T - 1))
        x[1, :, :t0 + 1] = x[0, :, :t0 + 1]             # same past, different future
        cases.append(Case("conv1d_causal_forward", (x, w, b), {"dilation": dilation}, check=_causality_check(t0, C_out),
                          tol=forward_tol(ref, x, w, b, dilation), label=f"two sequences equal up to t0={t0}, {_label(2, C_in, C_out, T, K, dilation, dtype)}"))
    return Part("test_conv1d_causal_forward_is_causal", cases)


# ---- backward ----------------------------------------------------------------------------------------
def _diagnose_backward(ref):
    def diagnose(case: Case, actual):
        dy, x, w = case.args
        dilation = case.kwargs["dilation"]
        if not (isinstance(actual, (tuple, list)) and len(actual) == 3):
            return None
        dx, dw, _ = actual
        tols = [tol_for(case.tol, i) for i in range(3)]
        undilated = ref.conv1d_causal_backward(*_f64(dy, x, w), 1)
        if dilation > 1 and all(_matches(a, e, t) for a, e, t in zip(actual, undilated, tols)):
            return "dilation ignored in the backward pass"
        expected_dx, expected_dw, _ = case.expected
        if not _matches(dx, expected_dx, tols[0]):
            dx_past = ref.conv1d_causal_forward(*_f64(dy, w.transpose(1, 0, 2)), np.zeros(w.shape[1]), dilation)
            if _matches(dx, dx_past, tols[0]):
                return ("dx reads dy from the past; x[s] influences y[s + (K-1-k)*dilation], so dx[s] needs "
                        "dy[s + (K-1-k)*dilation] (pad dy on the right)")
            if dilation > 1 and _matches(dx, undilated[0], tols[0]):
                return "dx ignores the dilation"
            return None
        if not _matches(dw, expected_dw, tols[1]):
            if _matches(dw, expected_dw[..., ::-1], tols[1]):
                return "dw is reversed along k: dw[co, ci, k] pairs dy[t] with x[t - (K-1-k)*dilation]"
            if dilation > 1 and _matches(dw, undilated[1], tols[1]):
                return "dw ignores the dilation"
        return None
    return diagnose


def _backward_part(ref, rng) -> Part:
    cases = []
    for B, C_in, C_out, T, K, dilation, dtype in _conv_shapes(rng):
        x, w, _ = _random_conv_args(rng, B, C_in, C_out, T, K, dtype)
        dy = rng.standard_normal((B, C_out, T)).astype(dtype)
        expected = tuple(g.astype(dtype) for g in ref.conv1d_causal_backward(*_f64(dy, x, w), dilation))
        cases.append(Case("conv1d_causal_backward", (dy, x, w), {"dilation": dilation}, expected=expected,
                          label=_label(B, C_in, C_out, T, K, dilation, dtype), tol=_backward_tol(ref, dy, x, w, dilation)))
    return Part("test_conv1d_causal_backward", cases, diagnose=_diagnose_backward(ref))


# ---- receptive field ---------------------------------------------------------------------------------
def _diagnose_receptive_field(case: Case, actual):
    kernel_size, dilations = case.args
    total, product = sum(dilations), int(np.prod(dilations))
    bugs = {1 + (kernel_size - 1) * product: "used the product of the dilations; the reaches of the layers add up: "
                                              "R = 1 + (K-1) * sum(dilations)",
            (kernel_size - 1) * total: "off by one: the current input x[t] counts too, R = 1 + (K-1) * sum(dilations)",
            2 + (kernel_size - 1) * total: "off by one: R = 1 + (K-1) * sum(dilations)",
            1 + kernel_size * total: "each layer reaches (K-1)*d steps back, not K*d",
            1 + (kernel_size - 1) * len(dilations): "dilations ignored: layer l reaches (K-1)*d_l steps back"}
    bugs.pop(case.expected, None)
    return bugs.get(actual) if isinstance(actual, (int, np.integer, float)) else None


def _receptive_field_part(ref, rng) -> Part:
    random_dilations = [int(d) for d in rng.integers(1, 9, size=int(rng.integers(2, 7)))]
    inputs = [(3, [1, 2, 4, 8]), (2, [1, 1, 1]), (4, [1, 3, 9]), (1, [1, 2, 4]), (3, []),
              (int(rng.integers(2, 5)), random_dilations), (2, (1, 2, 4, 8, 16))]
    cases = [Case("receptive_field", (K, dilations), expected=ref.receptive_field(K, dilations),
                  label=f"kernel_size={K}, dilations={dilations}") for K, dilations in inputs]
    return Part("test_receptive_field", cases, diagnose=_diagnose_receptive_field)


# ---- residual block ----------------------------------------------------------------------------------
def block_from(conv, x, params, dilation, final_relu=False, relu=True, skip=True, dilations=(True, True)):
    """The residual block computed with `conv`, optionally with a typical bug switched on
    (`dilations`: whether each of the two convolutions gets the dilation, or 1)."""
    hidden = conv(x, params["w1"], params["b1"], dilation if dilations[0] else 1)
    residual = conv(np.maximum(hidden, 0) if relu else hidden, params["w2"], params["b2"],
                    dilation if dilations[1] else 1)
    if skip:
        residual = residual + (conv(x, params["w_skip"], params["b_skip"], 1) if "w_skip" in params else x)
    return np.maximum(residual, 0) if final_relu else residual


def _block_params(rng, C_in, C_out, K, dtype) -> dict:
    params = {"w1": rng.standard_normal((C_out, C_in, K)) / np.sqrt(C_in * K), "b1": rng.standard_normal(C_out),
              "w2": rng.standard_normal((C_out, C_out, K)) / np.sqrt(C_out * K), "b2": rng.standard_normal(C_out)}
    if C_in != C_out:
        params |= {"w_skip": rng.standard_normal((C_out, C_in, 1)) / np.sqrt(C_in), "b_skip": rng.standard_normal(C_out)}
    return {key: value.astype(dtype) for key, value in params.items()}


def _diagnose_block(ref):
    def diagnose(case: Case, actual):
        x, params, dilation = case.args
        conv = ref.conv1d_causal_forward
        K = params["w1"].shape[-1]
        candidates = {
            "the skip connection is missing: add skip(x) to the second conv's output":
                lambda: block_from(conv, x, params, dilation, skip=False),
            "ReLU applied after the sum: this block is conv -> ReLU -> conv, then + skip, with no final ReLU":
                lambda: block_from(conv, x, params, dilation, final_relu=True),
            "the ReLU between the two convolutions is missing": lambda: block_from(conv, x, params, dilation, relu=False),
            "the skip path adds x itself although the channels change: apply the 1x1 conv "
            "(params['w_skip'], params['b_skip'])": lambda: block_from(conv, x, {k: v for k, v in params.items()
                                                                        if "skip" not in k}, dilation),
        }
        if dilation > 1:
            candidates |= {bug: lambda used=used: block_from(conv, x, params, dilation, dilations=used)
                           for bug, used in [
                               ("dilation ignored in both convolutions: pass `dilation` to both (and if "
                                "conv1d_causal_forward fails its own test, fix it first)", (False, False)),
                               ("the first convolution did not get the dilation: pass `dilation` to both", (False, True)),
                               ("the second convolution did not get the dilation: pass `dilation` to both", (True, False))]}
        candidates |= {f"tcn_block_forward matches a block built on a conv1d_causal_forward with this bug: {bug}; "
                       "fix conv1d_causal_forward first": lambda c=buggy: block_from(c, x, params, dilation)
                       for bug, buggy in forward_bugs(ref, K, dilation).items()}
        for bug, compute in candidates.items():
            try:
                if _matches(actual, compute(), case.tol):
                    return bug
            except ValueError:          # a variant that cannot broadcast for these channel counts
                continue
        return None
    return diagnose


def _block_check(actual, case: Case) -> str | None:
    problem = compare(actual, case.expected, name="tcn_block_forward(...)", tol=case.tol)
    if problem and isinstance(actual, Raised) and "broadcast" in actual.message and "w_skip" in case.args[1]:
        problem += ": when C_in != C_out the skip path needs the 1x1 conv params['w_skip'], params['b_skip']"
    return problem


def _block_part(ref, rng) -> Part:
    cases = []
    for B, C_in, C_out, T, K, dilation, dtype in [(2, 4, 4, 24, 3, 2, np.float64), (2, 3, 5, 30, 2, 4, np.float64),
                                                 (1, 1, 4, 20, 3, int(rng.integers(2, 9)), np.float64),
                                                 (2, 4, 4, 16, 4, 8, np.float32)]:
        x = rng.standard_normal((B, C_in, T)).astype(dtype)
        params = _block_params(rng, C_in, C_out, K, dtype)
        skip = "1x1 conv on the skip path" if C_in != C_out else "identity skip"
        expected = ref.tcn_block_forward(*_f64(x), {k: np.asarray(v, np.float64) for k, v in params.items()},
                                         dilation).astype(dtype)
        cases.append(Case("tcn_block_forward", (x, params, dilation), expected=expected,
                          check=_block_check, label=f"{_label(B, C_in, C_out, T, K, dilation, dtype)}, {skip}",
                          tol=_block_tol(ref, x, params, dilation)))
    return Part("test_tcn_block_forward", cases, diagnose=_diagnose_block(ref))


def parts(ref, rng) -> list[Part]:
    return [_forward_part(ref, rng), _causality_part(ref, rng), _backward_part(ref, rng),
            _receptive_field_part(ref, rng), _block_part(ref, rng)]
