"""Hidden checks of lesson 04: the pasted conv/pool functions, the layer classes (through the
notebook's locked probe_* wrappers), softmax cross-entropy, He init, SGD with momentum, the tiny-batch
overfit and the graded training run (accuracy computed here, outside the student's kernel).

Expected values come from the reference (solutions/04_train_cnn.py); the diagnoses recompute the
typical bugs from it (kernel flipped, gradient not averaged over the batch, momentum going uphill, He
variance from fan_out, ...) and name the one the student's output matches.
"""
from __future__ import annotations

import numpy as np

from autograder.checks.common import pooling
from autograder.checks.common.conv import backward_tol, conv_tol, diagnose_forward, forward_case
from autograder.grader.spec import Case, Part, Raised, Tol, compare, tol_for
from convlab.diagnosis import first_matching_bug
from convlab.tolerance import sensitivity
from convlab.data import load_digits_split
from autograder.checks._l04_bugs import BUGS  # noqa: F401  (the lesson's typical bugs, as students write them)

LESSON = "04_train_cnn"
_GRADER_EVENTS = {"Timeout", "Unsupported", "Crashed", "NotRun"}   # Raised types the sandbox sets itself


def _matches(actual, expected, tol: Tol) -> bool:
    """actual equals the bug variant `expected` within the rounding bound `tol` of the output it stands for."""
    return isinstance(actual, np.ndarray) and isinstance(expected, np.ndarray) and tol.matches(actual, expected)


def _abs(*arrays):
    return tuple(np.abs(np.asarray(a, dtype=np.float64)) for a in arrays)


def _item(result, index):
    return result[index] if isinstance(result, (tuple, list)) and len(result) > index else None


def _named_outputs(names: list[str], subject: str | None = None):
    """A Case.check comparing a tuple result element by element, naming each element in the message.
    `subject` (e.g. the layer class a probe wrapper exercises) is what an exception is blamed on."""
    def check(actual, case: Case) -> str | None:
        func = case.func
        if isinstance(actual, Raised):
            return actual.describe(subject or func)
        if not isinstance(actual, (tuple, list)) or len(actual) != len(names):
            return f"{func} returned {type(actual).__name__}, expected {len(names)} arrays ({', '.join(names)})"
        for k, (name, got, want) in enumerate(zip(names, actual, case.expected)):
            if got is None:
                return f"{name} was never set: backward must store it in self.grads"
            if problem := compare(got, want, name, tol_for(case.tol, k)):
                return problem
        return None
    return check


def _conv_config(rng):
    """Random (x, w, b, stride, pad) with at least one output position."""
    stride, pad, k = int(rng.integers(1, 4)), int(rng.integers(0, 3)), int(rng.integers(1, 4))
    h, w_ = int(rng.integers(max(k, 3), 9)), int(rng.integers(max(k, 3), 9))
    b, c_in, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 5))
    return (rng.normal(size=(b, c_in, h, w_)), rng.normal(size=(c_out, c_in, k, k)), rng.normal(size=c_out), stride, pad)


def _conv_label(x, w, stride, pad):
    return (f"B={x.shape[0]}, C_in={x.shape[1]}, {x.shape[2]}x{x.shape[3]}, C_out={w.shape[0]}, "
            f"K={w.shape[2]}x{w.shape[3]}, stride {stride}, pad {pad}")


def _conv_parts(ref, rng) -> list[Part]:
    forward_cases, backward_cases, layer_cases = [], [], []
    for _ in range(4):
        x, w, b, stride, pad = _conv_config(rng)
        y = ref.conv2d_forward(x, w, b, stride=stride, pad=pad)
        dy = rng.normal(size=y.shape)
        label = _conv_label(x, w, stride, pad)
        y_tol, grad_tols = conv_tol(ref, x, w, b, stride, pad), backward_tol(ref, dy, x, w, stride, pad)
        forward_cases.append(forward_case(ref, "conv2d_forward", x, w, b, stride, pad, label))
        backward_cases.append(Case("conv2d_backward", (dy, x, w), {"stride": stride, "pad": pad},
                                   ref.conv2d_backward(dy, x, w, stride=stride, pad=pad), label=label, tol=grad_tols,
                                   check=_named_outputs(["conv2d_backward dx", "conv2d_backward dw", "conv2d_backward db"])))
        layer_cases.append(Case("probe_conv2d_layer", (x, w, b, dy), {"stride": stride, "pad": pad},
                                ref.probe_conv2d_layer(x, w, b, dy, stride=stride, pad=pad), label=label,
                                tol=(y_tol, *grad_tols),
                                check=_named_outputs(["Conv2D.forward(x)", "Conv2D.backward(dy) (dx)",
                                                      "Conv2D.grads['w']", "Conv2D.grads['b']"], "Conv2D")))

    def diagnose_backward(case, actual):
        (dy, x, w), stride, pad = case.args, case.kwargs["stride"], case.kwargs["pad"]
        if _matches(_item(actual, 0), ref.conv2d_backward(dy, x, w[:, :, ::-1, ::-1], stride=stride, pad=pad)[0],
                    tol_for(case.tol, 0)):
            return "dx is a full correlation of dy with w itself; it needs the kernel rotated by 180 degrees"
        return None

    def diagnose_layer(case, actual):
        x, w, b, dy = case.args
        y = _item(actual, 0)
        if (isinstance(y, np.ndarray) and case.kwargs != {"stride": 1, "pad": 0}
                and _matches(y, ref.conv2d_forward(x, w, b), conv_tol(ref, x, w, b, 1, 0))):
            return "Conv2D does not pass its stride and pad on to conv2d_forward"
        return None

    return [Part("test_conv2d_forward", forward_cases, diagnose_forward(ref)),
            Part("test_conv2d_backward", backward_cases, diagnose_backward),
            Part("test_Conv2D", layer_cases, diagnose_layer)]


def _pool_parts(ref, rng) -> list[Part]:
    forward_cases, backward_cases, layer_cases = [], [], []
    for pool, stride in [(2, 2), (3, 2), (2, 1), (3, 3)]:
        x = rng.normal(size=(int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(pool, 9)), int(rng.integers(pool, 9))))
        y = ref.maxpool2d_forward(x, pool=pool, stride=stride)
        dy = rng.normal(size=y.shape)
        label = f"x {x.shape}, pool {pool}, stride {stride}"
        dx_tol = pooling.max_backward_tol(ref, dy, x, pool, stride)
        forward_cases.append(Case("maxpool2d_forward", (x,), {"pool": pool, "stride": stride}, y, label=label, tol=Tol()))
        backward_cases.append(Case("maxpool2d_backward", (dy, x), {"pool": pool, "stride": stride},
                                   ref.maxpool2d_backward(dy, x, pool=pool, stride=stride), label=label, tol=dx_tol))
        layer_cases.append(Case("probe_maxpool_layer", (x, dy), {"pool": pool, "stride": stride},
                                ref.probe_maxpool_layer(x, dy, pool=pool, stride=stride), label=label, tol=(Tol(), dx_tol),
                                check=_named_outputs(["MaxPool2D.forward(x)", "MaxPool2D.backward(dy)"], "MaxPool2D")))
    for pool, stride in [(2, 2), (3, 1)]:         # the docstring's tie rule: the first maximum takes dy
        x = rng.integers(0, 3, size=(2, 2, 6, 6)).astype(float)        # most windows have tied maxima
        dy = rng.normal(size=ref.maxpool2d_forward(x, pool=pool, stride=stride).shape)
        backward_cases.append(Case("maxpool2d_backward", (dy, x), {"pool": pool, "stride": stride},
                                   ref.maxpool2d_backward(dy, x, pool=pool, stride=stride),
                                   label=f"x {x.shape} with tied maxima, pool {pool}, stride {stride}",
                                   tol=pooling.max_backward_tol(ref, dy, x, pool, stride)))

    def diagnose_forward(case, actual):
        x, (pool, stride) = case.args[0], (case.kwargs["pool"], case.kwargs["stride"])
        windows = np.lib.stride_tricks.sliding_window_view(x, (pool, pool), axis=(2, 3))[:, :, ::stride, ::stride]
        if _matches(actual, windows.mean(axis=(4, 5)), Tol(windows.__abs__().mean(axis=(4, 5)), pool**2 + 1)):
            return "this is average pooling: take the max of each window"
        if stride != pool and np.shape(actual) == ref.maxpool2d_forward(x, pool=pool, stride=pool).shape:
            return "stride ignored (the step equals the pool size)"
        return None

    def diagnose_backward(case, actual):
        (dy, x), pool, stride = case.args, case.kwargs["pool"], case.kwargs["stride"]
        tie = first_matching_bug(actual, pooling.tie_bugs(dy, x, pool, stride), case.tol)
        if tie:
            return tie
        # each window's gradient copied to all its positions (average pooling without the 1/pool**2)
        spread = pooling.spread_windows(dy, x, pool, stride, divisor=1)
        spread_tol = Tol(pooling.spread_windows(np.abs(dy), x, pool, stride, divisor=1), pooling.overlap(pool, stride) + 1)
        if _matches(actual, spread, spread_tol) or _matches(actual, spread / pool ** 2, spread_tol):
            return "the gradient is spread over the whole window; it belongs to the max position only"
        if stride < pool:
            return "with overlapping windows (stride < pool) the gradients of windows sharing a max must add up"
        return None

    return [Part("test_maxpool2d_forward", forward_cases, diagnose_forward),
            Part("test_maxpool2d_backward", backward_cases, diagnose_backward),
            Part("test_MaxPool2D", layer_cases)]


def _relu_flatten_parts(ref, rng) -> list[Part]:
    relu_cases = []
    for shape in [(5, 7), (2, 3, 4, 4)]:
        x, dy = rng.normal(size=shape), rng.normal(size=shape)
        relu_cases.append(Case("probe_relu_layer", (x, dy), expected=ref.probe_relu_layer(x, dy), label=f"x {shape}",
                               check=_named_outputs(["ReLU.forward(x)", "ReLU.backward(dy)"], "ReLU")))
    x, dy = np.array([[-1.0, 0.0, 2.0], [0.0, 3.0, -4.0]]), np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    relu_cases.append(Case("probe_relu_layer", (x, dy), expected=ref.probe_relu_layer(x, dy),
                           label="inputs with exact zeros (the derivative at 0 is taken as 0)",
                           check=_named_outputs(["ReLU.forward(x)", "ReLU.backward(dy)"], "ReLU")))

    def diagnose_relu(case, actual):
        x, dy = case.args
        dx = _item(actual, 1)
        if _matches(dx, dy, Tol()):
            return "backward passes dy everywhere; it must be zero where the input was not positive"
        if _matches(dx, dy * np.maximum(x, 0), Tol()):
            return "backward multiplies dy by the output values; it needs the 0/1 mask (x > 0)"
        if _matches(dx, dy * (x >= 0), Tol()) and not _matches(dx, dy * (x > 0), Tol()):
            return "the mask lets the gradient through at x == 0; use x > 0"
        return None

    flatten_cases = []
    for shape in [(3, 2, 4, 5), (1, 6, 2, 2), (4, 1, 8, 8)]:
        x = rng.normal(size=shape)
        dy = rng.normal(size=(shape[0], int(np.prod(shape[1:]))))
        flatten_cases.append(Case("probe_flatten_layer", (x, dy), expected=ref.probe_flatten_layer(x, dy), label=f"x {shape}",
                                  check=_named_outputs(["Flatten.forward(x)", "Flatten.backward(dy)"], "Flatten")))

    def diagnose_flatten(case, actual):
        x = case.args[0]
        y = _item(actual, 0)
        if isinstance(y, np.ndarray) and y.size == x.size and y.shape != (x.shape[0], x.size // x.shape[0]):
            return "keep the batch axis: (N, C, H, W) -> (N, C*H*W)"
        if _matches(y, x.transpose(0, 2, 3, 1).reshape(x.shape[0], -1), Tol()):
            return "the values are read in H, W, C order; flatten in C, H, W order (a plain reshape)"
        return None

    return [Part("test_ReLU", relu_cases, diagnose_relu), Part("test_Flatten", flatten_cases, diagnose_flatten)]


def _dense_part(ref, rng) -> Part:
    cases = []
    for n, d_in, d_out in [(5, 4, 3), (1, 7, 2), (8, 3, 6), (4, 9, 9)]:
        x, W, b, dy = rng.normal(size=(n, d_in)), rng.normal(size=(d_out, d_in)), rng.normal(size=d_out), rng.normal(size=(n, d_out))
        ax, aW, ab, ady = _abs(x, W, b, dy)   # each output is a sum of products: D_in (+ bias), D_out, N, N terms
        tol = (Tol(ax @ aW.T + ab, d_in + 1), Tol(ady @ aW, d_out), Tol(ady.T @ ax, n), Tol(ady.sum(axis=0), n))
        cases.append(Case("probe_dense_layer", (x, W, b, dy), expected=ref.probe_dense_layer(x, W, b, dy),
                          label=f"N={n}, D_in={d_in}, D_out={d_out}", tol=tol,
                          check=_named_outputs(["Dense.forward(x)", "Dense.backward(dy) (dx)", "Dense.grads['W']", "Dense.grads['b']"], "Dense")))

    def diagnose(case, actual):
        x, W, b, dy = case.args
        n = x.shape[0]
        y, dx, dW, db = (_item(actual, i) for i in range(4))
        if isinstance(y, np.ndarray) and y.shape != (n, W.shape[0]):
            return "W has shape (D_out, D_in): y = x @ W.T + b"
        if isinstance(dW, np.ndarray) and dW.shape == W.T.shape and dW.shape != W.shape:
            return "grads['W'] must have W's shape (D_out, D_in): dW = dy.T @ x"
        if _matches(dW, dy.T @ x / n, tol_for(case.tol, 2)) and n > 1:
            return "grads['W'] is divided by the batch size; the loss already averages, so dy carries the 1/N"
        if isinstance(db, np.ndarray) and db.shape == dy.shape and db.shape != b.shape:
            return "grads['b'] must be summed over the batch: db = dy.sum(axis=0)"
        if W.shape[0] == W.shape[1] and _matches(dx, dy @ W.T, tol_for(case.tol, 1)):
            return "dx = dy @ W (W has shape (D_out, D_in)), not dy @ W.T"
        return None

    return Part("test_Dense", cases, diagnose)


def _softmax_check(actual, case: Case) -> str | None:
    if isinstance(actual, Raised):
        return actual.describe(case.func)
    if not isinstance(actual, (tuple, list)) or len(actual) != 2:
        return f"softmax_cross_entropy returned {type(actual).__name__}, expected a tuple (loss, dlogits)"
    loss, dlogits = actual
    if isinstance(loss, np.ndarray) and loss.size == 1:
        loss = loss.item()
    return (compare(loss, case.expected[0], "the loss", tol_for(case.tol, 0))
            or compare(dlogits, case.expected[1], "dlogits", tol_for(case.tol, 1)))


def _softmax_tol(ref, z, y) -> tuple[Tol, Tol]:
    """Softmax cross-entropy is not a sum of products: its magnitude is its condition times its value
    (convlab.tolerance.sensitivity), and each output involves a sum of K exponentials (and N losses)."""
    n, k = z.shape
    # log-sum-exp rounds its max-shifted logits and the max itself, values of size |z| that cancel
    # against z[y] when the loss is small: the inputs' sensitivity alone misses them
    z64 = np.asarray(z, dtype=np.float64)
    intermediates = float(np.mean(np.abs(z64).max(axis=1) + np.abs(z64[np.arange(n), y]) + np.log(k)))
    loss = sensitivity(lambda logits: ref.softmax_cross_entropy(logits, y)[0], (z,), (0,)) + intermediates
    # dlogits = (p - one_hot) / N: p carries a relative error of about u * |z - max| (exp of a rounded
    # difference), and p - 1 at the true class cancels a value of size 1
    one_hot = np.eye(k)[y]
    p = ref.softmax_cross_entropy(z64, y)[1] * n + one_hot
    shifted = np.abs(z64 - z64.max(axis=1, keepdims=True))
    dlogits = (sensitivity(lambda logits: ref.softmax_cross_entropy(logits, y)[1], (z,), (0,))
               + (p * (1 + shifted) + one_hot) / n)
    return Tol(float(loss), n + k + 4), Tol(dlogits, k + 4)


def _softmax_part(ref, rng) -> Part:
    inputs = []
    for n, k in [(4, 10), (1, 3), (7, 5)]:
        inputs.append((rng.normal(scale=3.0, size=(n, k)), rng.integers(0, k, size=n), f"N={n}, K={k}"))
    inputs.append((rng.normal(size=(6, 10)).astype(np.float32), rng.integers(0, 10, size=6), "float32 logits, N=6, K=10"))
    huge = np.array([[1e4, 0.0, -1e4, 5.0], [-1e4, 1e4, 0.0, 1e4], [3e3, -2e3, 1e4, 0.0]])
    inputs.append((huge, np.array([0, 1, 2]), "logits of size 1e4, each label at a row maximum"))
    inputs.append((huge, np.array([2, 0, 3]), "logits of size 1e4, labels far below the row maximum"))
    cases = [Case("softmax_cross_entropy", (z, y), expected=ref.softmax_cross_entropy(z.astype(np.float64), y),
                  check=_softmax_check, label=label, tol=_softmax_tol(ref, z, y)) for z, y, label in inputs]

    def diagnose(case, actual):
        z, y = case.args
        if not (isinstance(actual, (tuple, list)) and len(actual) == 2):
            return None
        loss, dlogits = actual
        loss_value = float(np.asarray(loss, dtype=float).ravel()[0]) if np.size(loss) == 1 else None
        if not np.all(np.isfinite(np.asarray(dlogits, dtype=float))):
            return ("overflow: exp of a large logit is inf and inf/inf is NaN; subtract each row's max "
                    "from the logits before np.exp")
        if loss_value is not None and not np.isfinite(loss_value):
            return "log of a probability that underflowed to 0; compute log p with log-sum-exp: (z - max) - log(sum(exp(z - max)))"
        ref_loss, ref_grad = case.expected
        n = z.shape[0]
        loss_tol, grad_tol = tol_for(case.tol, 0), tol_for(case.tol, 1)
        if n > 1 and _matches(dlogits, ref_grad * n, Tol(grad_tol.magnitude * n, grad_tol.terms)):
            return "dL/dz is not divided by the batch size N: the loss is a mean, so dL/dz = (p - one_hot(y)) / N"
        if _matches(dlogits, -ref_grad, grad_tol):
            return "the sign of dlogits is flipped: dL/dz = (p - one_hot(y)) / N"
        if _matches(dlogits, ref_grad + np.eye(z.shape[1])[y] / n, grad_tol):
            return "dlogits is missing the -1 at each example's true class"
        if n > 1 and loss_value is not None and Tol(loss_tol.magnitude * n, loss_tol.terms).matches(loss_value, ref_loss * n):
            return "the loss is summed over the batch; average it (divide by N)"
        return None

    return Part("test_softmax_cross_entropy", cases, diagnose)


def _he_check(actual, case: Case) -> str | None:
    if isinstance(actual, Raised):
        return actual.describe("he_init")
    shape = tuple(case.args[0])
    if not isinstance(actual, np.ndarray):
        return f"he_init returned {type(actual).__name__}, expected a numpy array of shape {shape}"
    if actual.shape != shape:
        return f"he_init({shape}, rng) has shape {actual.shape}, expected {shape}"
    if actual.dtype.kind != "f" or not np.all(np.isfinite(actual)):
        return f"he_init({shape}, rng) must return finite floats (got dtype {actual.dtype})"
    want = np.sqrt(2.0 / np.prod(shape[1:]))
    if abs(actual.mean()) > 5 * want / np.sqrt(actual.size):
        return f"he_init({shape}, rng) has mean {actual.mean():.4g}, expected 0"
    if not 0.95 < actual.std() / want < 1.05:
        return f"he_init({shape}, rng) has std {actual.std():.4g}, expected sqrt(2 / fan_in) = {want:.4g} (fan_in = {np.prod(shape[1:])})"
    return None


def _he_part() -> Part:
    shapes = [(64, 32, 3, 3), (200, 50), (512, 1, 5, 5)]   # >= 10000 draws: the std is known to < 1 %
    cases = [Case("probe_he_init", (list(shape), seed), check=_he_check, label=f"shape {shape}")
             for seed, shape in enumerate(shapes, start=11)]

    def diagnose(case, actual):
        shape = tuple(case.args[0])
        fan_in = np.prod(shape[1:])
        wrong_stds = {"the variance uses fan_out (outputs x kernel size) instead of fan_in = prod(shape[1:])":
                      np.sqrt(2.0 / (np.prod(shape) / shape[1])),
                      "the variance uses shape[0], the number of outputs; fan_in = prod(shape[1:])": np.sqrt(2.0 / shape[0]),
                      "fan_in must include the kernel size: C_in * K_h * K_w": np.sqrt(2.0 / shape[1]),
                      "the variance is 1/fan_in (LeCun); He initialisation for ReLU uses 2/fan_in": np.sqrt(1.0 / fan_in),
                      "2/fan_in is the variance, but rng.normal takes the standard deviation: use sqrt(2/fan_in)": 2.0 / fan_in}
        std = float(np.std(actual)) if isinstance(actual, np.ndarray) and actual.size else None
        for bug, wrong in wrong_stds.items():
            if std is not None and abs(std / wrong - 1) < 0.05 and abs(wrong / np.sqrt(2.0 / fan_in) - 1) > 0.1:
                return bug
        return None

    return Part("test_he_init", cases, diagnose)


def _sgd_tol(param, grad, velocity, lr, momentum) -> tuple[Tol, Tol]:
    """velocity = momentum*velocity - lr*grad (2 products, 1 sum), then param + velocity (1 more sum)."""
    step = np.abs(momentum * velocity) + np.abs(lr * grad)
    return Tol(np.abs(param) + step, 4), Tol(step, 3)


def _sgd_part(ref, rng) -> Part:
    cases = []
    for shape, lr, momentum in [((3, 4), 0.1, 0.9), ((5,), 0.01, 0.5), ((2, 3, 2, 2), 0.3, 0.0), ((7,), 0.05, 0.99)]:
        param, grad, velocity = rng.normal(size=shape), rng.normal(size=shape), rng.normal(size=shape)
        cases.append(Case("sgd_momentum_step", (param, grad, velocity, lr, momentum),
                          expected=ref.sgd_momentum_step(param.copy(), grad, velocity.copy(), lr, momentum),
                          check=_named_outputs(["new_param", "new_velocity"]),
                          label=f"shape {shape}, lr {lr}, momentum {momentum}, nonzero velocity",
                          tol=_sgd_tol(param, grad, velocity, lr, momentum)))

    def diagnose(case, actual):
        param, grad, velocity, lr, momentum = case.args
        new_param, new_velocity = _item(actual, 0), _item(actual, 1)
        if _matches(new_velocity, momentum * velocity + lr * grad, tol_for(case.tol, 1)):
            return "the velocity adds +lr*grad, so the step climbs the loss: velocity = momentum*velocity - lr*grad"
        if _matches(new_param, param + velocity, tol_for(case.tol, 0)) and _matches(new_velocity, momentum * velocity - lr * grad, tol_for(case.tol, 1)):
            return "param moved by the old velocity: update the velocity first, then param += new velocity"
        if _matches(new_velocity, momentum * velocity + grad, Tol(np.abs(momentum * velocity) + np.abs(grad), 3)):
            return ("this is the velocity of the 'v = momentum*v + grad; param -= lr*v' convention; here the velocity "
                    "is the step itself: velocity = momentum*velocity - lr*grad")
        step = momentum * velocity - lr * grad
        if _matches(new_param, param - step, tol_for(case.tol, 0)) and _matches(new_velocity, step, tol_for(case.tol, 1)):
            return "param moves against its velocity, so the step climbs the loss: param + velocity"
        if momentum > 0 and _matches(new_velocity, -lr * grad, tol_for(case.tol, 1)):
            return "momentum is ignored: keep momentum * the previous velocity"
        if _matches(new_param, momentum * velocity - lr * grad, tol_for(case.tol, 1)):
            return "the results are in the wrong order: return (new_param, new_velocity)"
        return None

    return Part("test_sgd_momentum_step", cases, diagnose)


def _loss_trend(losses) -> str:
    """A clause on how the probe's training loss evolved, naming the usual causes when it did not fall."""
    losses = np.asarray(losses, dtype=float).ravel() if isinstance(losses, (np.ndarray, list, tuple)) else np.array([])
    finite = losses[np.isfinite(losses)]
    rose = finite.size > 1 and finite[-1] > finite[0]
    if finite.size < losses.size:
        growth = f" after growing from {finite[0]:.3g} to {finite[-1]:.3g}" if rose else ""
        return (f"; the training loss diverged to NaN or inf{growth}: the update goes uphill or its steps are far "
                "too large (check the sign in sgd_momentum_step, and that dL/dz is divided by the batch size)")
    if rose:
        return (f"; the training loss went up ({finite[0]:.3g} -> {finite[-1]:.3g}): the update climbs the "
                "gradient, check the sign in sgd_momentum_step")
    return f"; training loss {finite[0]:.3g} -> {finite[-1]:.3g}" if finite.size else ""


def _prediction_check(key: str, labels: np.ndarray, threshold: float, what: str):
    def check(actual, case: Case) -> str | None:
        if isinstance(actual, Raised):
            if actual.type == "NotImplementedError":
                return f"{what} needs every function above, and one still raises NotImplementedError"
            if actual.type in _GRADER_EVENTS:
                return actual.describe(case.func)
            return f"{what} stopped with {actual.type}: {actual.message}"
        if not isinstance(actual, dict) or key not in actual:
            return f"{case.func} returned {type(actual).__name__} without {key!r}: run its (read-only) cell unchanged"
        predictions = actual[key]
        if not isinstance(predictions, np.ndarray) or predictions.shape != labels.shape:
            return f"{case.func}()[{key!r}] should be an array of {labels.shape[0]} predicted labels, got {np.shape(predictions)}"
        accuracy = float(np.mean(np.asarray(predictions) == labels))
        if accuracy >= threshold:
            return None
        return (f"{what} reached accuracy {accuracy:.1%}, {100 * (threshold - accuracy):.1f} percentage points "
                f"below the required {threshold:.0%}{_loss_trend(actual.get('losses'))}")
    return check


def _training_parts(ref) -> list[Part]:
    split = load_digits_split()
    overfit = Case("probe_overfit", (0,), timeout=ref.OVERFIT_SECONDS, label=f"seed 0, {ref.OVERFIT_EXAMPLES} images, {ref.OVERFIT_STEPS} full-batch steps",
                   check=_prediction_check("predictions", split.y_train[:ref.OVERFIT_EXAMPLES], 1.0, "the tiny-batch training"))
    graded = Case("probe_train", (0,), timeout=ref.PROBE_SECONDS, label=f"seed 0, {ref.PROBE_EPOCHS} epochs",
                  check=_prediction_check("test_predictions", split.y_test, ref.PROBE_ACCURACY, "the graded training run"))
    return [Part("test_overfit_tiny_batch", [overfit]), Part("test_probe_train", [graded])]


def parts(ref, rng) -> list[Part]:
    conv_forward, conv_backward, conv_layer = _conv_parts(ref, rng)
    pool_forward, pool_backward, pool_layer = _pool_parts(ref, rng)
    relu, flatten = _relu_flatten_parts(ref, rng)
    return [conv_forward, conv_backward, pool_forward, pool_backward, conv_layer, relu, pool_layer, flatten,
            _dense_part(ref, rng), _softmax_part(ref, rng), _he_part(), _sgd_part(ref, rng), *_training_parts(ref)]
