"""python -m bench [--quick] [--only conv,pool,grading,lesson04,notebooks] [--json PATH] [--save]
                 [--compare JSON] [--threads N] [--as-is]

Times the course's vectorized references side by side with naive loops, the textbook im2col and
PyTorch CPU (when installed), reports achieved GFLOP/s against the machine's float32 matmul rate,
grading throughput (bench/grading.py), the lesson-04 training result (bench/lesson04.py) and the
seconds each solution notebook takes, then says which of the course's performance goals are met.
From the command line it first re-executes itself in a fixed measurement environment (bench/environment.py).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from bench import common, conv, environment, pool

HERE = Path(__file__).resolve().parent
SECTIONS = ["conv", "pool", "grading", "lesson04", "notebooks"]
# (goal, limit): reference within 2x of torch; >= 2x faster than the textbook; >= 50x faster than naive loops.
TORCH_LIMIT, TEXTBOOK_SPEEDUP, NAIVE_SPEEDUP = 2.0, 2.0, 50.0


def _ratio(slow: float | None, fast: float | None) -> float | None:
    return round(slow / fast, 2) if slow and fast else None


def _fmt(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def add_ratios(rows: list[dict]) -> None:
    """reference/torch (how many times slower than torch), textbook/reference and naive/reference (speed-ups)."""
    for row in rows:
        ms = row["ms"]
        row["ratios"] = {"reference_vs_torch": _ratio(ms.get("reference"), ms.get("torch")),
                         "textbook_vs_reference": _ratio(ms.get("textbook"), ms.get("reference")),
                         "naive_vs_reference": _ratio(ms.get("naive"), ms.get("reference"))}


def conv_tables(result: dict, peak: float) -> str:
    times, rates = [], []
    for row in result["rows"]:
        ms, ratios = row["ms"], row["ratios"]
        gflops = {name: row["gflop"] / (t / 1e3) for name, t in ms.items()}
        times.append([row["shape"], row["pass"], _fmt(ms.get("naive"), 0), _fmt(ms.get("textbook")),
                      _fmt(ms.get("reference")), _fmt(ms.get("torch")), row["check"]])
        rates.append([row["shape"], row["pass"], _fmt(gflops.get("reference"), 1),
                      _fmt(gflops.get("reference") and 100 * gflops["reference"] / peak, 0),
                      _fmt(gflops.get("torch"), 1), _fmt(gflops.get("torch") and 100 * gflops["torch"] / peak, 0),
                      _fmt(ratios["reference_vs_torch"]),
                      _fmt(ratios["textbook_vs_reference"], 1), _fmt(ratios["naive_vs_reference"], 0)])
    return "\n\n".join([
        common.table(["conv2d (ms)", "pass", "naive", "textbook", "reference", "torch", "outputs"], times),
        common.table(["conv2d (rates)", "pass", "ref GFLOP/s", "% of peak", "torch GFLOP/s",
                      "% of peak", "ref / torch", "textbook / ref", "naive / ref"], rates)])


def pool_table(result: dict) -> str:
    rows = [[row["shape"], row["pass"], _fmt(row["ms"].get("naive")), _fmt(row["ms"].get("reference"), 3),
             _fmt(row["ms"].get("torch"), 3), _fmt(row["ratios"]["reference_vs_torch"]),
             _fmt(row["ratios"]["naive_vs_reference"], 0), row["check"]] for row in result["rows"]]
    return common.table(["max pooling (ms)", "pass", "naive", "reference", "torch", "ref / torch",
                         "naive / ref", "outputs"], rows)


def dict_table(title: str, result: dict) -> str:
    return common.table([title, "value"], [[key, json.dumps(value)] for key, value in result.items()])


def comparison_table(results: dict, earlier: dict) -> str:
    """Reference and torch milliseconds of this run next to an earlier run's (e.g. the committed one)."""
    rows = []
    for section in ("conv", "pool"):
        before = {(r["shape"], r["pass"]): r["ms"] for r in earlier.get(section, {}).get("rows", [])}
        for row in results.get(section, {}).get("rows", []):
            then = before.get((row["shape"], row["pass"]), {})
            rows.append([f"{section} {row['shape']}", row["pass"]] + [
                f"{_fmt(then.get(name))} -> {_fmt(row['ms'].get(name))}" for name in ("reference", "torch")])
    return common.table([f"ms, {earlier.get('date', '?')} -> now", "pass", "reference", "torch"], rows)


def optional_section(name: str) -> dict | None:
    """measure() of bench/<name>.py, written by the engineer who owns that part; None if absent."""
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as error:
        if error.name == f"bench.{name}":
            return None
        raise
    return module.measure()


def _worst(text: str, values: list, limit: float, higher_is_better: bool, unit: str, missing: str,
           digits: int = 2) -> dict:
    """A goal row from the worst of `values` (None entries were not measured) against `limit`."""
    values = [v for v in values if v is not None]
    if not values:
        return {"goal": text, "measured": missing, "met": None}
    worst = min(values) if higher_is_better else max(values)
    return {"goal": text, "measured": f"worst {worst:.{digits}f}x {unit}",
            "met": worst >= limit if higher_is_better else worst <= limit}


def goals(results: dict) -> list[dict]:
    """Each course performance goal measured in this run, with the worst case and whether it is met."""
    found = []
    if "conv" in results:
        rows = results["conv"]["rows"]
        no_torch = "torch not installed" if results["conv"]["torch_missing"] else "not measured"
        for pass_name in ("forward", "backward"):
            found.append(_worst(f"conv {pass_name}: reference within {TORCH_LIMIT:g}x of PyTorch CPU",
                                [r["ratios"]["reference_vs_torch"] for r in rows if r["pass"] == pass_name],
                                TORCH_LIMIT, False, "slower", no_torch))
        found.append(_worst(f"conv: reference >= {TEXTBOOK_SPEEDUP:g}x faster than the textbook im2col",
                            [r["ratios"]["textbook_vs_reference"] for r in rows], TEXTBOOK_SPEEDUP, True,
                            "faster", "not measured", digits=1))
        found.append(_worst(f"conv: reference >= {NAIVE_SPEEDUP:g}x faster than the naive loops",
                            [r["ratios"]["naive_vs_reference"] for r in rows], NAIVE_SPEEDUP, True,
                            "faster", "naive loops not available", digits=0))
    grading, lesson04 = results.get("grading") or {}, results.get("lesson04") or {}
    if "met" in grading:
        found.append({"goal": f"autograding >= {grading['goal_ratio']:g}x serial nbgrader (submissions/min)",
                      "measured": f"{grading['ratio']:.2f}x", "met": grading["met"]})
    if "startup_seconds" in grading:
        seconds = grading["startup_seconds"][grading["lesson"]]["with"]
        limit = grading["startup_goal_seconds"]
        found.append({"goal": f"sandbox start-up per {grading['lesson']} submission <= {limit:g} s",
                      "measured": f"{seconds:.2f} s", "met": seconds <= limit})
    if "met" in lesson04:
        found.append({"goal": f"lesson 04 CNN: {lesson04['goal']}", "met": lesson04["met"],
                      "measured": f"{lesson04['test_accuracy']:.1%} in {lesson04['cpu_seconds']:.0f} s CPU"})
    if "notebooks" in results:
        nbs = results["notebooks"]
        failed = [lesson for lesson, r in nbs["lessons"].items() if r["status"] != "ok"]
        total, limit = nbs["total_seconds"], nbs["goal_seconds"]
        found.append({"goal": f"all solution notebooks execute in < {limit} s in total",
                      "measured": f"{total:.0f} s" + (f", {len(failed)} failed: {', '.join(failed)}" if failed else ""),
                      "met": total < limit and not failed})
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few repeats: a smoke run, not numbers to quote")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "latest.json",
                        help="where to write the results (default bench/results/latest.json, not committed)")
    parser.add_argument("--save", action="store_true", help="also write them to bench/results.json (committed)")
    parser.add_argument("--compare", type=Path, metavar="JSON",
                        help="also print this run's times next to an earlier results file (e.g. bench/results.json)")
    parser.add_argument("--threads", type=int, help="limit numpy's BLAS and torch to this many threads each (default: "
                        "all cores); 1 gives steadier numbers on a machine other processes are using")
    parser.add_argument("--as-is", action="store_true", help="measure in this process's environment instead of "
                        "the benchmark's own (BLAS kernel and malloc settings: see bench/environment.py)")
    if argv is None:  # the command line: measure in the benchmark's environment
        argv = sys.argv[1:]
        environment.reexec_unless_ready(argv)
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    if unknown := sorted(set(only) - set(SECTIONS)):
        parser.error(f"unknown section(s) {', '.join(unknown)}: choose from {', '.join(SECTIONS)}")
    repeats, naive_repeats = (3, 1) if args.quick else (15, 3)
    if args.quick:  # a smoke run: do not wait for idle threads
        common.SETTLE_SECONDS = 0.0
    if args.threads:
        common.limit_threads(args.threads)

    started = time.time()
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), "machine": common.machine(),
                     "settings": {"quick": args.quick, "repeats": repeats, "naive_repeats": naive_repeats,
                                  "conv_naive_batch": conv.NAIVE_BATCH, "threads": args.threads or os.cpu_count()}}
    m = results["machine"]
    made = results["environment"] = environment.applied()
    print(f"ConvLab benchmark, {results['date']}{' (--quick: smoke run)' if args.quick else ''}")
    print(f"machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, numpy {m['numpy']} with {m['blas']}; "
          f"torch {m['torch']}")
    elsewhere = m["cores_busy_elsewhere"]
    print(f"load average at start: {' '.join(map(str, m['load_average']))}; cores busy with other processes: "
          f"{'unknown' if elsewhere is None else elsewhere}")
    busy = results["busy_machine"] = (elsewhere if elsewhere is not None else m["load_average"][0]) > 0.3
    if busy:
        print("WARNING: other processes are using the cores: timings on all of them are unreliable (threads wait "
              "for each other); re-run on an idle machine, or compare with --threads 1")
    if made is not None:
        print("measurement environment (bench/environment.py): unset "
              f"{', '.join(f'{k}={v}' for k, v in made['unset'].items()) or 'nothing'}; set "
              f"{', '.join(f'{k}={v}' for k, v in made['set'].items()) or 'nothing'}")
    if m["openblas_coretype"]:
        print(f"OPENBLAS_CORETYPE={m['openblas_coretype']} is set in this environment: it picks numpy's matmul kernels")
    peak = results["matmul_peak_gflops"] = common.matmul_peak(max(3, repeats // 2))
    print(f"float32 matmul peak (fastest 2048x2048 np.matmul): {peak:.1f} GFLOP/s\n")
    timing_note = f"median of {repeats} interleaved repeats; naive loops: median of {naive_repeats}"
    rng = np.random.default_rng(0)

    if "conv" in only:
        results["conv"] = conv.measure(repeats, naive_repeats, rng)
        add_ratios(results["conv"]["rows"])
        results["conv"]["torch_missing"] = m["torch"] == "not installed"
        print(f"Convolution, float32 ({timing_note}, timed on B={conv.NAIVE_BATCH} and scaled to the full batch)")
        print(conv_tables(results["conv"], peak))
        notes = results["conv"]["notes"] + (["torch not installed: its columns read - (pip install torch==2.13.0)"]
                                            if results["conv"]["torch_missing"] else [])
        print("".join(f"note: {n}\n" for n in notes))
    if "pool" in only:
        results["pool"] = pool.measure(repeats, naive_repeats, rng)
        add_ratios(results["pool"]["rows"])
        print(f"Max pooling, float32 ({timing_note}, on the full batch)")
        print(pool_table(results["pool"]))
        print("".join(f"note: {n}\n" for n in results["pool"]["notes"]))
    for name, title in [("grading", "autograding (bench/grading.py)"), ("lesson04", "lesson 04 (bench/lesson04.py)")]:
        if name in only:
            print(f"{title}:", flush=True)
            try:
                results[name] = optional_section(name)
            except Exception as error:  # noqa: BLE001 - another owner's section must not sink the benchmark
                results[name] = {"error": f"{type(error).__name__}: {error}"}
            print(dict_table(name, results[name]) if results[name] is not None else f"  bench/{name}.py not present")
            print()
    if "notebooks" in only:
        from bench import notebooks  # nbclient is only needed here
        print("Executing each solution notebook (CONVLAB_FAST unset, fresh kernel, one after another):", flush=True)
        results["notebooks"] = notebooks.measure()
        print(f"  total: {results['notebooks']['total_seconds']:.1f} s\n")

    if args.compare:
        print(comparison_table(results, json.loads(args.compare.read_text())) + "\n")
    results["goals"] = goals(results)
    if results["goals"]:
        status = {True: "met", False: "NOT met", None: "-"}
        if busy:  # a verdict from a busy machine is a guess: say so next to it
            status = {met: f"{text} (busy machine)" if met is not None else text for met, text in status.items()}
        print(common.table(["goal", "measured", "status"],
                           [[g["goal"], g["measured"], status[g["met"]]] for g in results["goals"]]))
    results["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    results["machine"]["cores_busy_elsewhere_at_end"] = common.cores_busy_elsewhere()
    results["seconds"] = round(time.time() - started, 1)
    print(f"\nat the end: load average {' '.join(map(str, results['machine']['load_average_at_end']))}, cores busy "
          f"with other processes {results['machine']['cores_busy_elsewhere_at_end']}; the benchmark took "
          f"{results['seconds']:.0f} s")
    for path in [args.json] + ([HERE / "results.json"] if args.save else []):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1) + "\n")
        print(f"results written to {path}")


if __name__ == "__main__":
    main()
