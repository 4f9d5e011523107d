"""Sample submissions of lesson 04 with their exact scores (18 points in all) and feedback substrings."""
from autograder.grader.spec import Sample

LESSON = "04_train_cnn"

SOFTMAX_WITHOUT_MAX = '''def softmax_cross_entropy(logits, y):
    N = logits.shape[0]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(N), y]).mean()
    dlogits = p.copy()
    dlogits[np.arange(N), y] -= 1.0
    return float(loss), dlogits / N
'''

GRADIENT_NOT_AVERAGED = '''def softmax_cross_entropy(logits, y):
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    dlogits = np.exp(log_p)
    dlogits[np.arange(N), y] -= 1.0
    return float(-log_p[np.arange(N), y].mean()), dlogits
'''

MOMENTUM_UPHILL = '''def sgd_momentum_step(param, grad, velocity, lr, momentum):
    velocity = momentum * velocity + lr * grad
    return param + velocity, velocity
'''

HE_FAN_OUT = '''def he_init(shape, rng):
    fan_out = shape[0] * int(np.prod(shape[2:]))
    return rng.normal(0.0, np.sqrt(2.0 / fan_out), size=shape)
'''

DENSE_SYNTAX_ERROR = '''class Dense:
    def __init__(self, W, b):
        self.params = {"W": W, "b": b}
        self.grads = {}

    def forward(self, x)
        return x @ self.params["W"].T + self.params["b"]
'''

SAMPLES = {
    "full": Sample(base="solution", score=18),
    "blank": Sample(base="release", score=0, messages={
        "test_conv2d_forward": "conv2d_forward is not implemented yet",
        "test_probe_train": "NotImplementedError"}),
    "softmax_without_max": Sample(replace={"softmax_cross_entropy": SOFTMAX_WITHOUT_MAX}, score=16, messages={
        "test_softmax_cross_entropy": "subtract each row's max"}),
    "gradient_not_averaged": Sample(replace={"softmax_cross_entropy": GRADIENT_NOT_AVERAGED}, score=12, messages={
        "test_softmax_cross_entropy": "not divided by the batch size",
        "test_probe_train": "percentage points below the required 90%"}),
    "momentum_uphill": Sample(replace={"sgd_momentum_step": MOMENTUM_UPHILL}, score=13, messages={
        "test_sgd_momentum_step": "climbs the loss",
        "test_probe_train": "the training loss diverged"}),
    "he_fan_out": Sample(replace={"he_init": HE_FAN_OUT}, score=17, messages={
        "test_he_init": "uses fan_out"}),
    "dense_syntax_error": Sample(replace={"Dense": DENSE_SYNTAX_ERROR}, score=12, messages={
        "test_Dense": "Dense is not defined"}),
}
