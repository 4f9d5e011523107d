"""The benchmark's own parts: its textbook im2col baseline against independent loops and numerical
gradients, its harness (interleaving, naive-batch scaling, output cross-checks), the goal verdicts,
and one tiny end-to-end run. No timing is asserted: `make bench` reports timings, tests do not."""
import functools
import json
import time
import types

import numpy as np
import pytest

from bench import __main__ as bench_main
from bench import common, conv, pool, workers
from bench.baselines import col2im, conv2d_backward_textbook, conv2d_forward_textbook, im2col

# (B, C_in, H, W, C_out, K_h, K_w, stride, pad): odd sizes, non-square kernels, strides that leave rows unused.
CONFIGS = [(2, 3, 5, 5, 4, 3, 3, 1, 1), (1, 2, 7, 6, 3, 3, 2, 2, 0), (2, 1, 6, 7, 2, 2, 3, 3, 2),
           (1, 2, 4, 4, 1, 1, 1, 1, 0)]


def conv_loops(x, w, b, stride, pad):
    """Y[b, co, i, j] = sum over ci, m, n of W[co, ci, m, n] X_pad[b, ci, stride*i + m, stride*j + n] + b[co]."""
    B, C_in, H, W = x.shape
    C_out, _, K_h, K_w = w.shape
    x_pad = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    H_out, W_out = (H + 2 * pad - K_h) // stride + 1, (W + 2 * pad - K_w) // stride + 1
    y = np.zeros((B, C_out, H_out, W_out))
    for n_b in range(B):
        for co in range(C_out):
            for i in range(H_out):
                for j in range(W_out):
                    patch = x_pad[n_b, :, stride * i:stride * i + K_h, stride * j:stride * j + K_w]
                    y[n_b, co, i, j] = np.sum(patch * w[co]) + b[co]
    return y


def numerical_gradient(f, a, eps=1e-6):
    grad = np.zeros_like(a)
    for index in np.ndindex(a.shape):
        saved = a[index]
        a[index] = saved + eps
        plus = f()
        a[index] = saved - eps
        minus = f()
        a[index] = saved
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def problem(config, rng):
    B, C_in, H, W, C_out, K_h, K_w, stride, pad = config
    x = rng.standard_normal((B, C_in, H, W))
    w = rng.standard_normal((C_out, C_in, K_h, K_w))
    b = rng.standard_normal(C_out)
    return x, w, b, stride, pad


@pytest.mark.parametrize("config", CONFIGS)
def test_textbook_forward_matches_loops(config):
    x, w, b, stride, pad = problem(config, np.random.default_rng(0))
    np.testing.assert_allclose(conv2d_forward_textbook(x, w, b, stride, pad), conv_loops(x, w, b, stride, pad),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("config", CONFIGS)
def test_textbook_backward_matches_numerical_gradients(config):
    x, w, b, stride, pad = problem(config, np.random.default_rng(1))
    dy = np.random.default_rng(2).standard_normal(conv_loops(x, w, b, stride, pad).shape)
    loss = lambda: np.sum(conv_loops(x, w, b, stride, pad) * dy)  # noqa: E731 - dL/dy = dy
    dx, dw, db = conv2d_backward_textbook(dy, x, w, stride, pad)
    for name, got, wrt in [("dx", dx, x), ("dw", dw, w), ("db", db, b)]:
        np.testing.assert_allclose(got, numerical_gradient(loss, wrt), rtol=1e-6, atol=1e-7, err_msg=name)


def test_col2im_is_the_adjoint_of_im2col():
    """<im2col(x), c> == <x, col2im(c)>: col2im sums each column entry back where im2col copied it from."""
    rng = np.random.default_rng(3)
    for B, C_in, H, W, _, K_h, K_w, stride, pad in CONFIGS:
        x = rng.standard_normal((B, C_in, H, W))
        cols = im2col(x, K_h, K_w, stride, pad)
        c = rng.standard_normal(cols.shape)
        assert np.isclose(np.sum(cols * c), np.sum(x * col2im(c, x.shape, K_h, K_w, stride, pad)))


def test_textbook_agrees_with_torch_in_float32():
    torch = pytest.importorskip("torch")
    x, w, b, stride, pad = problem(CONFIGS[1], np.random.default_rng(4))
    x, w, b = (a.astype(np.float32) for a in (x, w, b))
    expected = torch.nn.functional.conv2d(*map(torch.from_numpy, (x, w, b)), stride=stride, padding=pad).numpy()
    np.testing.assert_allclose(conv2d_forward_textbook(x, w, b, stride, pad), expected, rtol=1e-4, atol=1e-5)


def test_race_interleaves_candidates_and_local_timers_count_the_warmup():
    calls = []
    timers = {name: common.local_timer(lambda name=name: calls.append(name)) for name in "ab"}
    medians = common.race(timers, repeats=3, settle=0)
    assert calls == ["a", "a", "b", "b"] * 3
    assert set(medians) == {"a", "b"} and all(0 <= t.best <= t.median for t in medians.values())
    calls.clear()
    common.race({"slow": common.local_timer(lambda: calls.append("slow"), warmup=False)}, repeats=2)
    assert calls == ["slow", "slow"]


def test_race_waits_before_each_switch_of_candidate():
    seconds = {"a": lambda: 0.0, "b": lambda: 0.0}
    start = time.perf_counter()
    common.race(seconds, repeats=2, settle=0.05)
    assert time.perf_counter() - start >= 4 * 0.05


def test_workers_time_and_return_outputs_like_the_functions_themselves():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x, w, b = (rng.standard_normal(shape, dtype=np.float32) for shape in [(2, 3, 6, 6), (4, 3, 3, 3), (4,)])
    expected = torch.nn.functional.conv2d(*map(torch.from_numpy, (x, w, b)), stride=2, padding=1).numpy()
    torch_worker, numpy_worker = workers.Worker("torch", threads=1), workers.Worker("textbook", threads=1)
    try:
        assert torch_worker.version.startswith(torch.__version__.split("+")[0])
        forward = torch_worker.build("conv2d_forward", [x, w, b], stride=2, pad=1)
        np.testing.assert_allclose(forward.outputs()[0], expected, rtol=1e-5, atol=1e-5)
        assert 0 < forward.timer() < 5
        dy = rng.standard_normal(expected.shape, dtype=np.float32)
        dx, dw, db = torch_worker.build("conv2d_backward", [dy, x, w, b], stride=2, pad=1).outputs()
        assert dx.shape == x.shape and dw.shape == w.shape
        np.testing.assert_allclose(db, dy.sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-5)
        textbook = numpy_worker.build(("bench.baselines", "conv2d_forward_textbook"), [x, w, b], stride=2, pad=1)
        np.testing.assert_allclose(textbook.outputs(), expected, rtol=1e-4, atol=1e-4)
        with pytest.raises(RuntimeError, match="unknown torch operation"):
            torch_worker.build("conv3d", [x])
        with pytest.raises(RuntimeError, match="AttributeError"):
            numpy_worker.build(("bench.baselines", "no_such_function"), [x])
    finally:
        torch_worker.close()
        numpy_worker.close()


def test_measure_pass_scales_naive_to_the_batch_and_flags_wrong_outputs():
    x = np.random.default_rng(5).standard_normal((8, 2, 4, 4)).astype(np.float32)
    seen = []

    def naive(x, scale):
        seen.append(x.shape[0])
        return x * scale

    result = common.measure_pass({"naive": naive, "reference": lambda x, scale: x * scale,
                                  "textbook": lambda x, scale: x * scale + 1},
                                 (x,), {"scale": 2.0}, n_batched=1, batch=8, torch_op=None,
                                 repeats=1, naive_repeats=1, naive_batch=2)
    assert set(seen) == {2}
    assert result["check"] == "reference differs from textbook"
    assert set(result["ms"]) == {"naive", "reference", "textbook"}
    seen.clear()
    common.measure_pass({"naive": naive}, (x,), {"scale": 2.0}, 1, 8, None, 1, 1, naive_batch=None)
    assert set(seen) == {8}


def test_measure_pass_flags_a_reference_that_leaves_float32():
    x = np.ones((2, 1, 2, 2), dtype=np.float32)
    result = common.measure_pass({"reference": lambda x: x.astype(np.float64)}, (x,), {}, 1, 2, None, 1, 1, None)
    assert result["check"] == "reference returns float64 for float32 input"


def results_with(ref_vs_torch, textbook_vs_ref, naive_vs_ref, notebook_seconds, torch_missing=False):
    rows = [{"pass": p, "ratios": {"reference_vs_torch": r, "textbook_vs_reference": t, "naive_vs_reference": n}}
            for p, r, t, n in zip(["forward", "backward"], ref_vs_torch, textbook_vs_ref, naive_vs_ref)]
    return {"conv": {"rows": rows, "torch_missing": torch_missing},
            "notebooks": {"lessons": {"01": {"status": "ok"}}, "total_seconds": notebook_seconds, "goal_seconds": 180}}


def test_goals_report_the_worst_case_against_each_limit():
    verdicts = {g["goal"]: g["met"] for g in bench_main.goals(results_with([1.5, 2.5], [3, 2.5], [60, 40], 100))}
    assert list(verdicts.values()) == [True, False, True, False, True]
    verdicts = bench_main.goals(results_with([None, None], [3, 3], [60, 60], 200, torch_missing=True))
    assert [g["met"] for g in verdicts] == [None, None, True, True, False]
    assert verdicts[0]["measured"] == "torch not installed"


def test_goals_include_the_grading_and_lesson04_verdicts_of_their_owners():
    results = {"grading": {"ratio": 1.5, "goal_ratio": 1.8, "met": False},
               "lesson04": {"test_accuracy": 0.981, "cpu_seconds": 41.2, "goal": ">= 97% in < 60 s CPU", "met": True}}
    rows = bench_main.goals(results)
    assert [(r["measured"], r["met"]) for r in rows] == [("1.50x", False), ("98.1% in 41 s CPU", True)]


@pytest.mark.parametrize("torch_installed", [True, False])
def test_bench_runs_end_to_end_on_tiny_shapes(torch_installed, tmp_path, monkeypatch, capsys):
    if torch_installed:
        pytest.importorskip("torch")
    else:  # the torch worker reports no torch
        real_worker = workers.worker
        no_torch = types.SimpleNamespace(version=None, build=lambda *args, **kwargs: None)
        monkeypatch.setattr(workers, "worker", lambda kind: no_torch if kind == "torch" else real_worker(kind))
    monkeypatch.setattr(conv, "SHAPES", [conv.ConvShape("tiny", 4, 2, 6, 6, 3, 3, 2, 1)])
    monkeypatch.setattr(pool, "SHAPES", [pool.PoolShape("tiny", 4, 2, 6, 6, 2, 2)])
    monkeypatch.setattr(common, "matmul_peak", functools.partial(common.matmul_peak, n=64))
    bench_main.main(["--quick", "--only", "conv,pool", "--json", str(tmp_path / "r.json")])
    results = json.loads((tmp_path / "r.json").read_text())
    printed = capsys.readouterr().out
    assert [row["pass"] for row in results["conv"]["rows"]] == ["forward", "backward"]
    assert all(row["check"] == "ok" for row in results["conv"]["rows"] + results["pool"]["rows"])
    assert results["conv"]["rows"][0]["ms"]["textbook"] > 0
    assert "conv2d (ms)" in printed and "max pooling (ms)" in printed and "goal" in printed
    assert ("torch" in results["conv"]["rows"][0]["ms"]) == torch_installed
    if not torch_installed:
        assert "torch not installed" in printed
        assert [g["measured"] for g in results["goals"][:2]] == ["torch not installed"] * 2


def test_comparison_pairs_rows_by_shape_and_pass():
    row = {"shape": "s", "pass": "forward", "ms": {"reference": 2.0, "torch": 1.0}}
    earlier = {"date": "then", "conv": {"rows": [dict(row, ms={"reference": 4.0})]}}
    text = bench_main.comparison_table({"conv": {"rows": [row]}}, earlier)
    assert "4.00 -> 2.00" in text and "- -> 1.00" in text and "then -> now" in text


def test_unknown_section_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        bench_main.main(["--only", "conv,gpu"])
    assert "unknown section(s) gpu" in capsys.readouterr().err


def test_measurement_environment_unsets_the_blas_override_and_re_executes_once(monkeypatch):
    from bench import environment
    made = environment.changes({"OPENBLAS_CORETYPE": "Haswell", "MALLOC_TOP_PAD_": environment.SET["MALLOC_TOP_PAD_"]})
    assert made["unset"] == {"OPENBLAS_CORETYPE": "Haswell"}
    assert "MALLOC_TOP_PAD_" not in made["set"] and "MALLOC_TRIM_THRESHOLD_" in made["set"]
    calls = []
    monkeypatch.setattr(environment.os, "execve", lambda path, argv, env: calls.append((argv, env)))
    monkeypatch.delenv(environment.MARK, raising=False)
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    environment.reexec_unless_ready(["--as-is"])
    assert calls == []
    environment.reexec_unless_ready(["--only", "conv"])
    (argv, env), = calls
    assert argv[1:] == ["-m", "bench", "--only", "conv"]
    assert "OPENBLAS_CORETYPE" not in env and env["MALLOC_TRIM_THRESHOLD_"] == environment.SET["MALLOC_TRIM_THRESHOLD_"]
    monkeypatch.setenv(environment.MARK, env[environment.MARK])
    environment.reexec_unless_ready(["--only", "conv"])  # already in it: no second re-execution
    assert len(calls) == 1 and environment.applied()["unset"]["OPENBLAS_CORETYPE"] == "Haswell"


def test_goals_include_the_sandbox_start_up_of_the_graded_lesson():
    grading = {"ratio": 11.0, "goal_ratio": 10.0, "met": True, "lesson": "01_conv_forward", "startup_goal_seconds": 0.5,
               "startup_seconds": {"01_conv_forward": {"without": 0.9, "with": 0.6}, "02_relu_pooling": {"with": 0.1}}}
    rows = bench_main.goals({"grading": grading})
    assert [(r["measured"], r["met"]) for r in rows] == [("11.00x", True), ("0.60 s", False)]
    grading["startup_seconds"]["01_conv_forward"]["with"] = 0.5
    assert bench_main.goals({"grading": grading})[1]["met"] is True


def test_the_start_up_cell_holds_every_import_of_the_lesson_once():
    from bench.startup import import_cell
    source = import_cell("01_conv_forward").source.splitlines()
    assert "import numpy as np" in source and "from convlab.widgets.conv_slider import conv_slider" in source
    assert len(source) == len(set(source)) and all(line.startswith(("import ", "from ")) for line in source)
