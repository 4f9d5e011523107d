"""Lesson 04's typical bugs as students write them, with the graded cells each must fail and the words
its feedback must contain (autograder.grader.bugs; BUGS is exported by autograder/checks/l04_train_cnn.py).

Training cells (test_overfit_tiny_batch, test_probe_train) run the student's own layers, loss and update,
so a bug there often costs the training points too.
"""
from autograder.grader.bugs import Bug

_SOFTMAX_WITHOUT_MAX = '''def softmax_cross_entropy(logits, y):
    N = logits.shape[0]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(N), y]).mean()
    dlogits = p.copy()
    dlogits[np.arange(N), y] -= 1.0
    return float(loss), dlogits / N
'''

_LOG_SOFTMAX = '''def softmax_cross_entropy(logits, y):
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    dlogits = np.exp(log_p)
    dlogits[np.arange(N), y] -= 1.0
    return {result}
'''
_GRADIENT_NOT_AVERAGED = _LOG_SOFTMAX.format(result="float(-log_p[np.arange(N), y].mean()), dlogits")
_LOSS_SUMMED = _LOG_SOFTMAX.format(result="float(-log_p[np.arange(N), y].sum()), dlogits / N")

_MOMENTUM_UPHILL = '''def sgd_momentum_step(param, grad, velocity, lr, momentum):
    velocity = momentum * velocity + lr * grad
    return param + velocity, velocity
'''

_PARAM_MINUS_VELOCITY = '''def sgd_momentum_step(param, grad, velocity, lr, momentum):
    velocity = momentum * velocity - lr * grad
    return param - velocity, velocity
'''

_MOMENTUM_OLD_VELOCITY = '''def sgd_momentum_step(param, grad, velocity, lr, momentum):
    new_param = param + velocity
    return new_param, momentum * velocity - lr * grad
'''

_HE_FAN_OUT = '''def he_init(shape, rng):
    fan_out = shape[0] * int(np.prod(shape[2:]))
    return rng.normal(0.0, np.sqrt(2.0 / fan_out), size=shape)
'''

_HE_VARIANCE_AS_STD = '''def he_init(shape, rng):
    fan_in = int(np.prod(shape[1:]))
    return rng.normal(0.0, 2.0 / fan_in, size=shape)
'''

_DENSE_SYNTAX_ERROR = '''class Dense:
    def __init__(self, W, b):
        self.params = {"W": W, "b": b}
        self.grads = {}

    def forward(self, x)
        return x @ self.params["W"].T + self.params["b"]
'''

_DENSE_DW_TRANSPOSED = '''class Dense:
    def __init__(self, W, b):
        self.params, self.grads = {"W": W, "b": b}, {}

    def forward(self, x):
        self.x = x
        return x @ self.params["W"].T + self.params["b"]

    def backward(self, dy):
        self.grads["W"], self.grads["b"] = self.x.T @ dy, dy.sum(axis=0)    # dW as x.T @ dy: (D_in, D_out)
        return dy @ self.params["W"]
'''

_RELU_PASSES_EVERYTHING = '''class ReLU:
    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x):
        return np.maximum(x, 0)

    def backward(self, dy):
        return dy
'''

_POOL_GRADIENT_SPREAD = '''def maxpool2d_backward(dy, x, pool=2, stride=2):
    dx = np.zeros_like(x)
    for i in range(dy.shape[2]):
        for j in range(dy.shape[3]):
            dx[:, :, i * stride:i * stride + pool, j * stride:j * stride + pool] += dy[:, :, i:i + 1, j:j + 1]
    return dx
'''

_POOL_TIES_TO_EVERY_MAX = '''def maxpool2d_backward(dy, x, pool=2, stride=2):
    dx = np.zeros_like(x)
    for i in range(dy.shape[2]):
        for j in range(dy.shape[3]):
            window = x[:, :, i * stride:i * stride + pool, j * stride:j * stride + pool]
            is_max = window == window.max(axis=(2, 3), keepdims=True)
            dx[:, :, i * stride:i * stride + pool, j * stride:j * stride + pool] += is_max * dy[:, :, i:i + 1, j:j + 1]
    return dx
'''

_CONV_KERNEL_FLIPPED = '''def conv2d_forward(x, w, b, stride=1, pad=0):
    C_out, C_in, K_h, K_w = w.shape
    w = w[:, :, ::-1, ::-1]          # "a convolution flips its kernel"
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (K_h, K_w), axis=(2, 3))[:, :, ::stride, ::stride]
    y = np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3]))
    return y.transpose(0, 3, 1, 2) + b[None, :, None, None]
'''

_TRAINING = ("test_overfit_tiny_batch", "test_probe_train")

BUGS = {   # autograder.grader.bugs: each bug as students write it, and the cells it must fail
    "blank": Bug(base="release", fails_every=True, fails={
        "test_conv2d_forward": "conv2d_forward is not implemented yet", "test_probe_train": "NotImplementedError"}),
    "softmax_without_max": Bug({"softmax_cross_entropy": _SOFTMAX_WITHOUT_MAX},
                               fails={"test_softmax_cross_entropy": "subtract each row's max"}),
    "gradient_not_averaged": Bug({"softmax_cross_entropy": _GRADIENT_NOT_AVERAGED}, fails={
        "test_softmax_cross_entropy": "not divided by the batch size", "test_overfit_tiny_batch": "",
        "test_probe_train": "percentage points below the required 90%"}),
    "momentum_uphill": Bug({"sgd_momentum_step": _MOMENTUM_UPHILL}, fails={
        "test_sgd_momentum_step": "climbs the loss", "test_overfit_tiny_batch": "",
        "test_probe_train": "the training loss diverged"}),
    "he_fan_out": Bug({"he_init": _HE_FAN_OUT}, fails={"test_he_init": "uses fan_out"}),
    "dense_syntax_error": Bug({"Dense": _DENSE_SYNTAX_ERROR}, fails={
        "test_Dense": "Dense is not defined", "test_overfit_tiny_batch": "", "test_probe_train": ""}),
    "loss_summed": Bug({"softmax_cross_entropy": _LOSS_SUMMED},
                       fails={"test_softmax_cross_entropy": "summed over the batch"}, shipped=False),
    "param_minus_velocity": Bug({"sgd_momentum_step": _PARAM_MINUS_VELOCITY},
                                fails={"test_sgd_momentum_step": "moves against its velocity",
                                       **dict.fromkeys(_TRAINING, "")}, shipped=False),
    "momentum_old_velocity": Bug({"sgd_momentum_step": _MOMENTUM_OLD_VELOCITY},
                                 fails={"test_sgd_momentum_step": "update the velocity first"}, shipped=False),
    "he_variance_as_std": Bug({"he_init": _HE_VARIANCE_AS_STD},
                              fails={"test_he_init": "rng.normal takes the standard deviation",
                                     **dict.fromkeys(_TRAINING, "")}, shipped=False),
    "dense_dw_transposed": Bug({"Dense": _DENSE_DW_TRANSPOSED},
                               fails={"test_Dense": "must have W's shape", **dict.fromkeys(_TRAINING, "")}, shipped=False),
    "relu_passes_everything": Bug({"ReLU": _RELU_PASSES_EVERYTHING},
                                  fails={"test_ReLU": "passes dy everywhere", "test_probe_train": ""}, shipped=False),
    "pool_gradient_spread": Bug({"maxpool2d_backward": _POOL_GRADIENT_SPREAD},
                                fails={"test_maxpool2d_backward": "spread over the whole window", "test_MaxPool2D": ""},
                                shipped=False),
    "pool_ties_to_every_max": Bug({"maxpool2d_backward": _POOL_TIES_TO_EVERY_MAX},
                                  fails={"test_maxpool2d_backward": "the whole gradient went to every tied maximum"}, shipped=False),
    "conv_kernel_flipped": Bug({"conv2d_forward": _CONV_KERNEL_FLIPPED},
                               fails={"test_conv2d_forward": "kernel flipped", "test_Conv2D": "", "test_probe_train": ""},
                               shipped=False),
}
