"""The layer classes (Conv2D, ReLU, MaxPool2D, Flatten, Dense) of lesson 04's fairness variants, one
set per style; l04_train_cnn.VARIANTS puts each set with the functions a variant wrote."""
from autograder.fairness.stubs import filler

fill = filler("04_train_cnn")

# ---------------------------------------------------------------- written for "im2col_matmul"
_CONV2D_LAYER_A = fill("Conv2D", '''\
        self.x = x
        return conv2d_forward(x, self.params["w"], self.params["b"], stride=self.stride, pad=self.pad)
''', '''\
        dx, self.grads["w"], self.grads["b"] = conv2d_backward(dy, self.x, self.params["w"],
                                                               stride=self.stride, pad=self.pad)
        return dx
''')

_RELU_LAYER_A = fill("ReLU", '''\
        self.x = x
        return np.maximum(x, 0)
''', '''\
        return np.where(self.x > 0, dy, 0)
''')

_MAXPOOL_LAYER_A = fill("MaxPool2D", '''\
        self.x = x
        return maxpool2d_forward(x, self.pool, self.stride)
''', '''\
        return maxpool2d_backward(dy, self.x, self.pool, self.stride)
''')

_FLATTEN_LAYER_A = fill("Flatten", '''\
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)
''', '''\
        return dy.reshape(self.shape)
''')

_DENSE_LAYER_A = fill("Dense", '''\
        self.x = x
        return x @ self.params["W"].T + self.params["b"]
''', '''\
        self.grads["W"] = dy.T @ self.x
        self.grads["b"] = dy.sum(axis=0)
        return dy @ self.params["W"]
''')

# ---------------------------------------------------------------- written for "windows_einsum"
_CONV2D_LAYER_B = fill("Conv2D", '''\
        self.cache = (x, self.params["w"])
        return conv2d_forward(x, self.params["w"], self.params["b"], self.stride, self.pad)
''', '''\
        x, w = self.cache
        dx, dw, db = conv2d_backward(dy, x, w, self.stride, self.pad)
        self.grads = {"w": dw, "b": db}
        return dx
''')

_RELU_LAYER_B = fill("ReLU", '''\
        self.mask = x > 0
        return x * self.mask
''', '''\
        return dy * self.mask
''')

_MAXPOOL_LAYER_B = fill("MaxPool2D", '''\
        self.input = x.copy()
        return maxpool2d_forward(self.input, pool=self.pool, stride=self.stride)
''', '''\
        return maxpool2d_backward(dy, self.input, pool=self.pool, stride=self.stride)
''')

_FLATTEN_LAYER_B = fill("Flatten", '''\
        N, C, H, W = x.shape
        self.input_shape = (N, C, H, W)
        return np.reshape(x, (N, C * H * W))
''', '''\
        return np.reshape(dy, self.input_shape)
''')

_DENSE_LAYER_B = fill("Dense", '''\
        self.x = x
        return np.einsum("ni,oi->no", x, self.params["W"]) + self.params["b"][None, :]
''', '''\
        self.grads = {"W": np.einsum("no,ni->oi", dy, self.x), "b": np.einsum("no->o", dy)}
        return np.einsum("no,oi->ni", dy, self.params["W"])
''')

# ---------------------------------------------------------------- written for "taps_float64"
_CONV2D_LAYER_C = fill("Conv2D", '''\
        self._input = np.array(x, copy=True)
        w, b = self.params["w"], self.params["b"]
        return conv2d_forward(self._input, w, b, self.stride, self.pad)
''', '''\
        grads = conv2d_backward(dy, self._input, self.params["w"], self.stride, self.pad)
        self.grads["w"], self.grads["b"] = grads[1], grads[2]
        return grads[0]
''').replace("        self.stride, self.pad = stride, pad\n",       # the student also sets the cache up front
             "        self.stride, self.pad = stride, pad\n        self._input = None\n", 1)

_RELU_LAYER_C = fill("ReLU", '''\
        self.positive = np.greater(x, 0)
        return np.where(self.positive, x, np.zeros_like(x))
''', '''\
        dx = np.zeros_like(dy)
        dx[self.positive] = dy[self.positive]
        return dx
''')

_MAXPOOL_LAYER_C = fill("MaxPool2D", '''\
        self.saved = x
        y = maxpool2d_forward(x, self.pool, self.stride)
        return y
''', '''\
        dx = maxpool2d_backward(dy, self.saved, self.pool, self.stride)
        self.saved = None
        return dx
''')

_FLATTEN_LAYER_C = fill("Flatten", '''\
        self.shape = tuple(x.shape)
        return np.ascontiguousarray(x).reshape(self.shape[0], int(np.prod(self.shape[1:])))
''', '''\
        return np.asarray(dy).reshape(self.shape)
''')

_DENSE_LAYER_C = fill("Dense", '''\
        self.x = x
        return np.dot(x, self.params["W"].T) + self.params["b"]
''', '''\
        W = self.params["W"]
        self.grads["W"] = np.tensordot(dy, self.x, axes=([0], [0]))
        self.grads["b"] = np.add.reduce(dy, axis=0)
        return np.dot(dy, W)
''')


def _layers(conv2d: str, relu: str, maxpool: str, flatten: str, dense: str) -> dict[str, str]:
    return {"Conv2D": conv2d, "ReLU": relu, "MaxPool2D": maxpool, "Flatten": flatten, "Dense": dense}


LAYERS = {     # the variant that wrote them -> {stub grade_id: cell}
    "im2col_matmul": _layers(_CONV2D_LAYER_A, _RELU_LAYER_A, _MAXPOOL_LAYER_A, _FLATTEN_LAYER_A, _DENSE_LAYER_A),
    "windows_einsum": _layers(_CONV2D_LAYER_B, _RELU_LAYER_B, _MAXPOOL_LAYER_B, _FLATTEN_LAYER_B, _DENSE_LAYER_B),
    "taps_float64": _layers(_CONV2D_LAYER_C, _RELU_LAYER_C, _MAXPOOL_LAYER_C, _FLATTEN_LAYER_C, _DENSE_LAYER_C),
}
