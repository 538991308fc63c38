"""Tracking benchmark: `python -m bench tracking [--json] [--quick] ...`.

For each scenario of `bench.tracking.scenarios` (exact definitions there) it
runs our `Tracker` and, on the identical data, the references of
`bench.tracking.references`: the clairvoyant bound, Stone Soup GNN and
JPDAwithEHM, and a per-track filterpy loop. It reports the median ms per scan
of each and the GOSPA (p = 1, c = 50 m, alpha = 2) over confirmed tracks at
each scan, averaged over scans 10 onward, with its localisation, missed and
false parts, plus ratios measured in this run: reference ms / our ms and
GOSPA / the bound's GOSPA.

Scaling: our tracker on `ScenarioSpec.scaled(n)` for 1,000 and 10,000 targets,
ms per scan and peak memory. Peak memory is the tracemalloc peak from the
tracker's construction through its last update (a separate, untimed pass):
every NumPy allocation and Numba's (its runtime allocates through
PyMem_RawMalloc), including the snapshot each update returns; the scenario's
own arrays are allocated before and not counted.

Filter kernels: `kalman.predict` + `kalman.update` on 10,000 tracks in one
batch, median over repeats, in ns per track-step; against filterpy's
`KalmanFilter.predict()` + `update(z)` on one track in the same process, in
µs per step.

Timings: `time.perf_counter` around each `tracker.update` (Numba kernels are
warmed on a throwaway run first). References run in a child process each with
a wall-clock budget (`--reference-budget`, default 300 s); one that does not
finish is reported as such, with a partial median over the scans it did.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np

from bench import results
from bench.gospa import gospa
from bench.tracking.references import REFERENCES, ReferenceRun, ncv_matrices, run_reference
from bench.tracking.scenarios import SCENARIOS, Scenario, ScenarioSpec, generate
from edge.tracking import Tracker, TrackerConfig, kalman

GOSPA_C = 50.0
GOSPA_P = 1.0
GOSPA_ALPHA = 2.0
FIRST_SCORED_SCAN = 10

OURS = "dunewatch"
OURS_GNN = "dunewatch-gnn"
BOUND = "clairvoyant"
EXTERNAL_REFERENCES = ("stonesoup-gnn", "stonesoup-jpda", "filterpy-loop")
DEFAULT_BUDGET_S = 300.0


@dataclass(frozen=True)
class Settings:
    """How much work a run does; `--quick` shrinks everything."""

    scan_limit: int | None
    references: tuple[str, ...]
    budget_s: float
    scaling_targets: tuple[int, ...]
    scaling_scans: int
    kernel_tracks: int
    kernel_repeats: int
    filterpy_steps: int
    json_name: str = "tracking"


def settings_from(args: argparse.Namespace) -> Settings:
    references = () if args.no_references else EXTERNAL_REFERENCES
    if args.quick:
        return Settings(
            scan_limit=12,
            references=tuple(r for r in references if r == "filterpy-loop"),
            budget_s=min(args.reference_budget, 10.0),
            scaling_targets=(1_000,),
            scaling_scans=5,
            kernel_tracks=10_000,
            kernel_repeats=20,
            filterpy_steps=200,
            json_name="tracking-quick",
        )
    return Settings(
        scan_limit=None,
        references=references,
        budget_s=args.reference_budget,
        scaling_targets=(1_000, 10_000),
        scaling_scans=30,
        kernel_tracks=10_000,
        kernel_repeats=200,
        filterpy_steps=2_000,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench tracking",
        description="Tracker speed and GOSPA against the clairvoyant bound, Stone Soup "
        "and filterpy on identical data.",
    )
    results.add_json_option(parser, "tracking")
    parser.add_argument(
        "--quick", action="store_true",
        help="smoke test: 12 scans, no Stone Soup, small scaling run "
        "(JSON goes to tracking-quick.json)",
    )
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS),
        help="comma-separated names (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=1, help="scenario seed (default: 1)")
    parser.add_argument(
        "--reference-budget", type=float, default=DEFAULT_BUDGET_S, metavar="SECONDS",
        help="wall-clock budget of each reference run (default: %(default)s)",
    )
    parser.add_argument(
        "--no-references", action="store_true",
        help="skip Stone Soup and filterpy (the clairvoyant bound still runs)",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    args.scenarios = names
    return args


# --- our tracker -------------------------------------------------------------


def make_tracker(spec: ScenarioSpec, association: str = "jpda") -> Tracker:
    return Tracker(
        TrackerConfig(
            process_noise=spec.q,
            detection_probability=spec.detection_probability,
            clutter_density=spec.clutter_density,
            association=association,
            # A sensor that sees every target at every scan deletes sooner than a drone's
            # camera (the node's defaults): the values the published figures were run with.
            confirmed_delete_drop=7.0,
            max_coast_time_s=10.0,
        )
    )


def run_ours(scenario: Scenario, association: str = "jpda") -> ReferenceRun:
    """Our tracker on the scenario: per-scan update time and confirmed positions."""
    if association == "jpda":
        run = ReferenceRun(OURS, "dunewatch Tracker (JPDA)", len(scenario))
    else:
        run = ReferenceRun(OURS_GNN, "dunewatch Tracker (GNN)", len(scenario))
    tracker = make_tracker(scenario.spec, association)
    for scan in scenario:
        start = time.perf_counter()
        tracks = tracker.update(scan.time, scan.z, scan.R)
        run.scan_ms.append((time.perf_counter() - start) * 1e3)
        run.estimates.append(np.ascontiguousarray(tracks.x[tracks.confirmed, :2]))
    return run


def peak_tracker_memory(scenario: Scenario) -> int:
    """tracemalloc peak (bytes) from tracker construction through its last update."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        tracker = make_tracker(scenario.spec)
        for scan in scenario:
            tracks = tracker.update(scan.time, scan.z, scan.R)
            del tracks
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - base


def warm_up() -> None:
    """Compile and load every kernel on throwaway data so no timing includes it."""
    for spec in SCENARIOS.values():
        for association in ("jpda", "gnn"):
            run_ours(generate(spec.with_seed(987_654).with_scans(12)), association)
    kernel_step_ns(1_000, 3)


# --- scoring -----------------------------------------------------------------


def mean_gospa(scenario: Scenario, run: ReferenceRun) -> dict[str, float] | None:
    """GOSPA per scan over the run's estimates, averaged over scans >= 10."""
    if not run.finished or len(scenario) <= FIRST_SCORED_SCAN:
        return None
    parts = []
    for scan, estimates in zip(scenario, run.estimates, strict=True):
        if scan.index >= FIRST_SCORED_SCAN:
            g = gospa(scan.truth[:, :2], estimates, GOSPA_C, p=GOSPA_P, alpha=GOSPA_ALPHA)
            parts.append((g.total, g.localisation, g.missed, g.false))
    total, loc, missed, false = np.mean(np.array(parts), axis=0)
    return {
        "total": float(total),
        "localisation": float(loc),
        "missed": float(missed),
        "false": float(false),
    }


def summarise(scenario: Scenario, run: ReferenceRun) -> dict:
    ms = np.asarray(run.scan_ms)
    return {
        "label": run.label,
        "finished": run.finished,
        "scans_done": run.scans_done,
        "n_scans": run.n_scans,
        "budget_s": run.budget_s,
        "error": run.error,
        "median_ms": float(np.median(ms)) if ms.size else None,
        "p95_ms": float(np.percentile(ms, 95)) if ms.size else None,
        "total_s": float(ms.sum() / 1e3),
        "gospa": mean_gospa(scenario, run),
    }


def add_ratios(runners: dict[str, dict]) -> None:
    """speedup = runner ms / our ms; gospa_vs_bound = runner GOSPA / bound GOSPA."""
    ours_ms = runners[OURS]["median_ms"]
    bound = runners.get(BOUND, {}).get("gospa")
    for entry in runners.values():
        ms = entry["median_ms"]
        entry["speedup_of_ours"] = ms / ours_ms if ms is not None and ours_ms else None
        g = entry["gospa"]
        entry["gospa_vs_bound"] = g["total"] / bound["total"] if g and bound else None


# --- sections ----------------------------------------------------------------


def bench_scenario(spec: ScenarioSpec, settings: Settings) -> dict:
    if settings.scan_limit is not None:
        spec = spec.with_scans(min(spec.n_scans, settings.scan_limit))
    scenario = generate(spec)
    _progress(f"{spec.name}: dunewatch Tracker")
    runs = {
        OURS: run_ours(scenario),
        OURS_GNN: run_ours(scenario, association="gnn"),
        BOUND: run_reference(BOUND, spec),
    }
    for kind in settings.references:
        _progress(f"{spec.name}: {REFERENCES[kind].label} (budget {settings.budget_s:.0f} s)")
        runs[kind] = run_reference(kind, spec, budget_s=settings.budget_s)
    runners = {kind: summarise(scenario, run) for kind, run in runs.items()}
    add_ratios(runners)
    return {"spec": _spec_dict(spec), "runners": runners}


def bench_scaling(n_targets: int, settings: Settings, seed: int) -> dict:
    spec = ScenarioSpec.scaled(n_targets, n_scans=settings.scaling_scans, seed=seed)
    _progress(f"scaling: {n_targets} targets")
    scenario = generate(spec)
    run = run_ours(scenario)
    last = run.estimates[-1]
    return {
        "spec": _spec_dict(spec),
        "median_ms": float(np.median(run.scan_ms)),
        "p95_ms": float(np.percentile(run.scan_ms, 95)),
        "peak_memory_bytes": peak_tracker_memory(scenario),
        "confirmed_tracks_at_end": int(last.shape[0]),
        "detections_per_scan": float(np.mean([s.n_detections for s in scenario])),
    }


def kernel_step_ns(n_tracks: int, repeats: int, q: float = 0.05) -> dict[str, float]:
    """Median ns per track of batched predict, update and both, on n_tracks tracks."""
    rng = np.random.default_rng(0)
    x = np.zeros((4, n_tracks))
    x[:2] = rng.uniform(-1000.0, 1000.0, size=(2, n_tracks))
    x[2:] = rng.normal(0.0, 5.0, size=(2, n_tracks))
    P = np.zeros((4, 4, n_tracks))
    for k in range(4):
        P[k, k] = 25.0
    dt = np.ones(n_tracks)
    z = np.ascontiguousarray(x[:2].T + rng.normal(0.0, 5.0, size=(n_tracks, 2)))
    R = np.zeros((n_tracks, 2, 2))
    R[:, 0, 0] = R[:, 1, 1] = 25.0
    index = np.arange(n_tracks, dtype=np.int64)
    predict_ns, update_ns = [], []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        kalman.predict(x, P, dt, q, n_tracks)
        t1 = time.perf_counter_ns()
        kalman.update(x, P, index, z, R, index)
        t2 = time.perf_counter_ns()
        predict_ns.append((t1 - t0) / n_tracks)
        update_ns.append((t2 - t1) / n_tracks)
    both = [p + u for p, u in zip(predict_ns, update_ns, strict=True)]
    return {
        "tracks": n_tracks,
        "repeats": repeats,
        "predict_ns": statistics.median(predict_ns),
        "update_ns": statistics.median(update_ns),
        "predict_update_ns": statistics.median(both),
    }


def filterpy_step_us(steps: int, q: float = 0.05, block: int = 50) -> float:
    """Median µs of one filterpy `predict()` + `update(z)` on a 4-state NCV filter."""
    from filterpy.kalman import KalmanFilter

    kf = KalmanFilter(dim_x=4, dim_z=2)
    kf.F, kf.Q = ncv_matrices(q, 1.0)
    kf.H = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    kf.R = np.eye(2) * 25.0
    kf.P = np.eye(4) * 25.0
    z = np.random.default_rng(0).normal(0.0, 5.0, size=(block, 2))
    per_step = []
    for _ in range(max(steps // block, 1)):
        start = time.perf_counter()
        for k in range(block):
            kf.predict()
            kf.update(z[k])
        per_step.append((time.perf_counter() - start) / block * 1e6)
    return statistics.median(per_step)


def bench_kernels(settings: Settings) -> dict:
    _progress("filter kernels")
    ours = kernel_step_ns(settings.kernel_tracks, settings.kernel_repeats)
    ours["filterpy_us_per_step"] = filterpy_step_us(settings.filterpy_steps)
    ours["speedup_vs_filterpy"] = ours["filterpy_us_per_step"] * 1e3 / ours["predict_update_ns"]
    return ours


# --- report ------------------------------------------------------------------


def _spec_dict(spec: ScenarioSpec) -> dict:
    return {k: getattr(spec, k) for k in spec.__dataclass_fields__}


def _progress(message: str) -> None:
    print(f"[bench tracking] {message}", file=sys.stderr, flush=True)


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def _ms_cell(entry: dict) -> str:
    ms = entry["median_ms"]
    if entry["finished"]:
        return _fmt(ms, ".3f" if ms < 10 else ".1f")
    if entry["error"] and not entry["scans_done"]:
        return "failed"
    return f"({_fmt(ms, '.1f', '?')})"


def format_scenario(result: dict) -> list[str]:
    spec = result["spec"]
    lines = [
        f"{spec['name']}: {spec['n_targets']} targets, {spec['n_scans']} scans, "
        f"sigma {spec['sigma']:g} m, pd {spec['detection_probability']:g}, "
        f"clutter {spec['clutter_mean']:g}/scan, seed {spec['seed']}",
        f"  {'runner':<24}{'ms/scan':>10}{'x ours':>9}{'GOSPA':>9}{'loc':>8}"
        f"{'missed':>8}{'false':>8}{'/bound':>8}",
    ]
    notes = []
    for entry in result["runners"].values():
        g = entry["gospa"] or {}
        lines.append(
            f"  {entry['label']:<24}{_ms_cell(entry):>10}"
            f"{_fmt(entry['speedup_of_ours'], '.0f'):>9}"
            f"{_fmt(g.get('total'), '.1f'):>9}{_fmt(g.get('localisation'), '.1f'):>8}"
            f"{_fmt(g.get('missed'), '.1f'):>8}{_fmt(g.get('false'), '.1f'):>8}"
            f"{_fmt(entry['gospa_vs_bound'], '.3f'):>8}"
        )
        if not entry["finished"]:
            reason = entry["error"] or f"did not finish in {entry['budget_s']:.0f} s"
            notes.append(
                f"  {entry['label']}: {reason}; {entry['scans_done']}/{entry['n_scans']} scans, "
                "ms/scan in parentheses is the median over those scans only (partial)"
            )
    return lines + notes


def format_report(report: dict) -> str:
    lines = []
    for result in report["scenarios"]:
        lines += format_scenario(result) + [""]
    if report["scaling"]:
        lines.append("scaling (stonesoup-50 density, clutter 0.4/target, sigma 5 m, pd 0.9)")
        lines.append(
            f"  {'targets':>8}{'side km':>9}{'det/scan':>10}{'ms/scan':>9}{'p95 ms':>9}"
            f"{'peak MB':>9}{'confirmed':>11}"
        )
        for s in report["scaling"]:
            lines.append(
                f"  {s['spec']['n_targets']:>8}{s['spec']['side'] / 1e3:>9.1f}"
                f"{s['detections_per_scan']:>10.0f}{s['median_ms']:>9.2f}{s['p95_ms']:>9.2f}"
                f"{s['peak_memory_bytes'] / 1e6:>9.1f}{s['confirmed_tracks_at_end']:>11}"
            )
        lines.append("")
    k = report["kernels"]
    lines.append(
        f"filter kernels, {k['tracks']} tracks batched: predict {k['predict_ns']:.1f} + "
        f"update {k['update_ns']:.1f} = {k['predict_update_ns']:.1f} ns per track-step; "
        f"filterpy {k['filterpy_us_per_step']:.1f} us per step "
        f"({k['speedup_vs_filterpy']:.0f}x)"
    )
    lines.append(
        f"x ours = runner ms / our ms; /bound = GOSPA / clairvoyant GOSPA "
        f"(GOSPA p=1 c=50 alpha=2, mean over scans >= {FIRST_SCORED_SCAN})"
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    _progress("warming up kernels")
    warm_up()
    report = {
        **results.header("tracking", argv, "numpy", "numba", "scipy", "stonesoup", "filterpy"),
        "quick": args.quick,
        "reference_budget_s": settings.budget_s,
        "gospa": {"p": GOSPA_P, "c": GOSPA_C, "alpha": GOSPA_ALPHA,
                  "first_scored_scan": FIRST_SCORED_SCAN},
        "scenarios": [
            bench_scenario(SCENARIOS[name].with_seed(args.seed), settings)
            for name in args.scenarios
        ],
        "scaling": [bench_scaling(n, settings, args.seed) for n in settings.scaling_targets],
    }
    report["kernels"] = bench_kernels(settings)
    results.publish(format_report(report), report, settings.json_name if args.json else None)
    return 0
