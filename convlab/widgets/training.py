"""Watch a network train, and look at what it learned (lesson 04).

    monitor = TrainingMonitor(epochs=10, steps_per_epoch=34)   # progress bar + live loss/accuracy plot
    monitor.step(loss)                                          # after every mini-batch
    monitor.end_epoch(loss=0.21, train_acc=0.93, val_acc=0.91)  # after every epoch: redraw the plot
    monitor.history                                             # {"loss": [...], "train_acc": [...], ...}

In JupyterLab the monitor is an ipywidgets box with the DOM class `convlab-widget`: a progress bar,
a line with elapsed time and ETA, the live plot as a PNG image, and an epoch slider that follows
training and afterwards lets you go back to any epoch (marked on the plot, its numbers shown).
Without a notebook kernel (plain python, the grader) it prints one line per epoch instead.

    history_figure(history)                      # loss and accuracy per epoch
    filters_figure(w)                            # first-layer kernels w (C_out, 1, K_h, K_w) as images
    feature_maps_figure(image, maps)             # one input (H, W) and its feature maps (C, H', W')
    FeatureMapExplorer(images, labels, maps_fn)  # a slider over inputs, showing their feature maps

Figures are `matplotlib.figure.Figure` objects made without pyplot: show one with `display(fig)`.
"""
from __future__ import annotations

import io
import time
from typing import Callable

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["TrainingMonitor", "in_notebook", "format_duration", "progress_text", "epoch_line",
           "history_figure", "filters_figure", "feature_maps_figure", "figure_png", "FeatureMapExplorer"]

_REDRAW_SECONDS = 0.2   # progress-bar refresh interval: enough to look live, cheap for the kernel


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where widgets can be displayed), False in plain python."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def format_duration(seconds: float) -> str:
    """'42.0 s' below a minute, '3 min 05 s' above."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s"


def progress_text(step: int, total: int, elapsed: float, loss: float | None = None) -> str:
    """One status line: 'step 120/340 · loss 0.412 · 3.2 s · ETA 5.9 s'. ETA assumes a constant pace."""
    parts = [f"step {step}/{total}"]
    if loss is not None:
        parts.append(f"loss {loss:.3f}")
    parts.append(format_duration(elapsed))
    if 0 < step < total:
        parts.append("ETA " + format_duration(elapsed * (total - step) / step))
    return " · ".join(parts)


def epoch_line(epoch: int, epochs: int, metrics: dict[str, float], elapsed: float) -> str:
    """'epoch  3/10  loss 0.2310  train_acc 0.9510  val_acc 0.9440  (1.2 s)'."""
    width = len(str(epochs))
    values = "  ".join(f"{name} {value:.4f}" for name, value in metrics.items())
    return f"epoch {epoch:{width}d}/{epochs}  {values}  ({format_duration(elapsed)})"


def history_figure(history: dict[str, list[float]], fig: Figure | None = None, mark_epoch: int | None = None) -> Figure:
    """Every '*loss*' series (left) and every '*acc*' series (right, left out when there is none but
    a loss) against the epoch number, from 1; a dashed line marks `mark_epoch` when given."""
    fig = fig or Figure(figsize=(8, 3), layout="constrained")
    fig.clear()
    losses = {name: values for name, values in history.items() if "loss" in name and len(values)}
    accuracies = {name: values for name, values in history.items() if "acc" in name and len(values)}
    axes = list(fig.subplots(1, 2)) if accuracies or not losses else [fig.subplots(1, 1)]
    for name, values in losses.items():
        axes[0].plot(np.arange(1, len(values) + 1), values, "o-", label=name.replace("_", " "),
                     **({"color": "tab:red"} if len(losses) == 1 else {}))
    axes[0].set(xlabel="epoch", ylabel="mean training loss", title="loss")
    if len(losses) > 1:
        axes[0].legend(loc="upper right")
    if len(axes) == 2:
        for name, values in accuracies.items():
            axes[1].plot(np.arange(1, len(values) + 1), values, "o-", label=name.replace("_", " "))
        axes[1].set(xlabel="epoch", ylabel="accuracy", title="accuracy")
        if accuracies:
            axes[1].legend(loc="lower right")
    epochs = max(map(len, history.values()), default=0)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if epochs:
            ax.set_xlim(0.5, max(epochs, 2) + 0.5)
        if mark_epoch is not None:
            ax.axvline(mark_epoch, color="grey", linestyle="--")
    return fig


def figure_png(fig: Figure) -> bytes:
    """The figure rendered as PNG bytes (for an ipywidgets Image)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


class TrainingMonitor:
    """Progress bar and live loss/accuracy plot for a training loop; plain text without a notebook.

    `step(loss)` after each of the `epochs * steps_per_epoch` mini-batches; `end_epoch(**metrics)`
    after each epoch with that epoch's numbers (e.g. loss=..., val_acc=...), which are appended to
    `history`. `widgets=None` picks widgets in a notebook kernel and printed lines elsewhere.
    """

    def __init__(self, epochs: int, steps_per_epoch: int, widgets: bool | None = None,
                 printer: Callable[[str], None] = print, total_steps: int | None = None):
        self.epochs, self.total = epochs, total_steps or epochs * steps_per_epoch   # total_steps: a shorter last epoch
        self.history: dict[str, list[float]] = {}
        self.steps, self._printer, self._elapsed = 0, printer, 0.0
        self._start = self._epoch_start = self._last_draw = time.perf_counter()
        self.view = self._build_view() if (in_notebook() if widgets is None else widgets) else None

    def _build_view(self):
        import ipywidgets as W
        from IPython.display import display
        self._bar = W.IntProgress(value=0, min=0, max=self.total, description="training",
                                  layout=W.Layout(width="50%"))
        self._status = W.HTML(value=progress_text(0, self.total, 0.0))
        self._plot = W.Image(format="png", layout=W.Layout(width="640px"))
        self._figure = Figure(figsize=(8, 3), layout="constrained")
        self._epoch = W.IntSlider(value=1, min=1, max=1, description="epoch", disabled=True)
        self._epoch.observe(lambda change: self.show_epoch(change["new"]), names="value")
        view = W.VBox([W.HBox([self._bar, self._status]), self._epoch, self._plot])
        view.add_class("convlab-widget")
        display(view)
        return view

    def step(self, loss: float) -> None:
        self.steps += 1
        now = time.perf_counter()
        if self.view is not None and (now - self._last_draw >= _REDRAW_SECONDS or self.steps == self.total):
            self._bar.value = self.steps
            self._status.value = progress_text(self.steps, self.total, now - self._start, float(loss))
            self._last_draw = now

    def end_epoch(self, **metrics: float) -> None:
        for name, value in metrics.items():
            self.history.setdefault(name, []).append(float(value))
        now, started = time.perf_counter(), self._epoch_start
        self._epoch_start, self._elapsed = now, now - self._start
        epoch = max(map(len, self.history.values()), default=0)
        if self.view is None:
            self._printer(epoch_line(epoch, self.epochs, metrics, now - started))
            return
        self._bar.value = self.steps
        self._epoch.disabled, self._epoch.max = False, epoch
        if self._epoch.value == epoch:
            self.show_epoch(epoch)
        else:
            self._epoch.value = epoch   # follows training; the observer redraws

    def show_epoch(self, epoch: int) -> None:
        """Mark `epoch` (from 1) on the plot and show its numbers under the progress line."""
        metrics = {name: values[epoch - 1] for name, values in self.history.items() if len(values) >= epoch}
        numbers = "  ".join(f"{name} {value:.4f}" for name, value in metrics.items())
        self._status.value = f"{progress_text(self.steps, self.total, self._elapsed)}<br>epoch {epoch}: {numbers}"
        self._plot.value = figure_png(history_figure(self.history, self._figure, mark_epoch=epoch))


def _image_grid(fig: Figure, images: list[np.ndarray], titles: list[str], columns: int, cmap: str) -> None:
    rows = -(-len(images) // columns)
    for index, (image, title) in enumerate(zip(images, titles)):
        ax = fig.add_subplot(rows, columns, index + 1)
        ax.imshow(image, cmap=cmap, interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()


def filters_figure(w: np.ndarray, columns: int = 8) -> Figure:
    """Kernels of a first conv layer, w (C_out, C_in, K_h, K_w), channel 0 of each as a small image.
    Each kernel has its own colour scale (red positive, blue negative, white zero)."""
    kernels = np.asarray(w)[:, 0]
    limits = np.abs(kernels).max(axis=(1, 2), keepdims=True) + 1e-12
    rows = -(-len(kernels) // columns)
    fig = Figure(figsize=(1.2 * columns, 1.3 * rows), layout="constrained")
    _image_grid(fig, kernels / limits, [f"filter {k}" for k in range(len(kernels))], columns, "bwr")
    for ax in fig.axes:
        ax.images[0].set_clim(-1, 1)
    return fig


def feature_maps_figure(image: np.ndarray, maps: np.ndarray, title: str = "input", columns: int = 8) -> Figure:
    """One input image (H, W) followed by its feature maps (C, H', W'), one small image each."""
    maps = np.asarray(maps)
    fig = Figure(figsize=(1.2 * columns, 1.3 * (1 + -(-len(maps) // columns))), layout="constrained")
    _image_grid(fig, [np.asarray(image)] + list(maps), [title] + [f"map {c}" for c in range(len(maps))],
                columns, "viridis")
    return fig


class FeatureMapExplorer:
    """A slider over `images` (N, 1, H, W); for the chosen one, `maps_fn(image[None])` (1, C, H', W')
    is drawn as feature maps under the input. The root widget has the DOM class `convlab-widget`.
    When maps_fn is still a stub (NotImplementedError) the view says so instead of failing."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, maps_fn: Callable[[np.ndarray], np.ndarray],
                 caption: Callable[[int], str] | None = None):
        import ipywidgets as W
        self.images, self.labels, self.maps_fn = images, labels, maps_fn
        self.caption = caption or (lambda index: f"test image {index}: digit {labels[index]}")
        self.slider = W.IntSlider(value=0, min=0, max=len(images) - 1, description="image")
        self.text = W.HTML()
        self.picture = W.Image(format="png", layout=W.Layout(width="720px"))
        self.view = W.VBox([self.slider, self.text, self.picture])
        self.view.add_class("convlab-widget")
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.show(0)

    def render(self, index: int) -> tuple[str, bytes | None]:
        """(caption, PNG of the input and its maps) for image `index`; no PNG when maps_fn is a stub."""
        try:
            maps = np.asarray(self.maps_fn(self.images[index:index + 1]))[0]
        except NotImplementedError:
            return "the feature maps need your Conv2D.forward: implement it and run this cell again", None
        fig = feature_maps_figure(self.images[index, 0], maps, title=f"digit {self.labels[index]}")
        return self.caption(index), figure_png(fig)

    def show(self, index: int) -> None:
        self.text.value, png = self.render(index)
        self.picture.value = png or b""
        self.picture.layout.display = None if png else "none"

    def _ipython_display_(self):
        from IPython.display import display
        display(self.view)
