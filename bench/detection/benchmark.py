"""Detection benchmark: `python -m bench detection [--json] [--quick] ...`.

Two parts, each skipped with a note when its input is missing:

- thermal: `bench.detection.thermal_eval` on real labelled thermal images
  (default: HIT-UAV's validation split in ../shared/data): person and vehicle
  recall against false alarms per image as the strength threshold is swept,
  beside the single-frame white top-hat baseline run on the same images in the
  same run; the curves also for the halves the detector was and was not tuned
  on. Then the learned detector (`thermal_learned_eval`) on the same images,
  with and without the pose, its calibrated score swept. Time per image is
  reported as a ratio to the baseline's, OpenCV and ONNX Runtime on one thread.
- rendered thermal: `bench.detection.rendered_thermal_eval`, both thermal
  detectors on the scenario's rendered thermal frames, scored against its
  truth in the image.
- rendered EO: `bench.detection.rendered_eval`, the motion detector and the
  tracker on the scenario's drone camera as `sim_hw.camera` renders it, scored
  against the scenario's ground truth (fps at 1280x720 on one OpenCV thread).

`--json` writes bench/results/detection.json (detection-quick.json with
`--quick`, which scores 60 images and the rendered scenario's quick window).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import results
from bench.detection import (
    rendered_eval,
    rendered_thermal_eval,
    thermal_eval,
    thermal_learned_eval,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HIT_UAV = PROJECT_ROOT.parent / "shared" / "data" / "thermal" / "hit-uav-val"
DEFAULT_SCENARIO = PROJECT_ROOT / "configs" / "scenarios" / "small.toml"
QUICK_IMAGES = 60
SUMMARY_BUDGETS = ("1", "2", "5", "10", "20")  # false alarms per image
SUMMARY_RECALLS = ("0.8", "0.85", "0.88")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench detection",
        description="Thermal hot spots on real labelled images against a top-hat baseline; "
        "EO motion detection on a rendered scenario.",
    )
    parser.add_argument("--thermal-images", type=Path, default=HIT_UAV, metavar="DIR",
                        help="folder of thermal images (default: %(default)s)")
    parser.add_argument("--thermal-annotations", type=Path, default=None, metavar="FILE",
                        help="COCO-style boxes (default: DIR/val.json)")
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO,
                        help="scenario rendered for the EO part (default: %(default)s)")
    results.add_json_option(parser, "detection")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_IMAGES} thermal images and the scenario's quick window "
                        "(JSON goes to detection-quick.json)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.thermal_annotations is None:
        args.thermal_annotations = args.thermal_images / "val.json"
    return args


def bench_thermal(args: argparse.Namespace) -> dict:
    if not args.thermal_images.is_dir() or not args.thermal_annotations.is_file():
        return {"skipped": f"no thermal images at {args.thermal_images} "
                           f"with boxes {args.thermal_annotations}"}  # fmt: skip
    limit = QUICK_IMAGES if args.quick else None
    with rendered_eval.one_opencv_thread():  # every detector timed on one core
        result = thermal_eval.evaluate(args.thermal_images, args.thermal_annotations, limit=limit)
        result["learned"] = thermal_learned_eval.evaluate(args.thermal_images,
                                                          args.thermal_annotations, limit=limit)
    return result


def bench_rendered(args: argparse.Namespace) -> dict:
    """The rendered-scenario EO part: the figures, and their table."""
    if not args.scenario.is_file():
        return {"skipped": f"no scenario at {args.scenario}"}
    result = rendered_eval.evaluate(str(args.scenario), args.quick)
    return {"result": result, "report": rendered_eval.format_report(result)}


def bench_rendered_thermal(args: argparse.Namespace) -> dict:
    if not args.scenario.is_file():
        return {"skipped": f"no scenario at {args.scenario}"}
    with rendered_eval.one_opencv_thread():
        result = rendered_thermal_eval.evaluate(str(args.scenario),
                                                step_s=10.0 if args.quick else 2.0)  # fmt: skip
    return {"result": result, "report": rendered_thermal_eval.format_report(result)}


def format_thermal(thermal: dict) -> str:
    if "skipped" in thermal:
        return f"thermal: skipped ({thermal['skipped']})"
    data, ours, baseline = thermal["dataset"], thermal["ours"], thermal["baseline"]
    lines = [
        f"Thermal hot spots on {data['images']} labelled images ({data['persons']} persons, "
        f"{data['vehicles']} vehicles) from {data['images_dir']}",
        f"camera: {thermal['camera']['hfov_deg']:g} deg horizontal field of view, assumed "
        "(fitted to the boxes: see bench.detection.thermal_eval)",
        "",
        _curve_table("ours: threshold on strength", ours["curves"]["all"], "{:>9.2f}"),
        "",
        _curve_table(f"baseline ({baseline['method']}): threshold in grey levels",
                     baseline["curves"]["all"], "{:>9.0f}"),  # fmt: skip
        "",
        _summary_table(ours["summaries"], baseline["summaries"]),
        "",
        f"ms per image: ours {ours['ms_per_image']:.1f}, baseline {baseline['ms_per_image']:.1f}"
        f" (ours / baseline = {ours['ms_per_image'] / baseline['ms_per_image']:.2f}); "
        f"persons found at the default threshold called 'person': "
        f"{ours['person_class_accuracy']:.3f}",
        "",
        _learned_table(thermal["learned"], ours, baseline),
    ]  # fmt: skip
    return "\n".join(lines)


def _learned_table(learned: dict, hot_spots: dict, baseline: dict) -> str:
    """Person and vehicle recall within each false-alarm budget: the learned detector with
    and without the pose beside the hot-spot detector; then times and the default row."""
    hot_curve = hot_spots["curves"]["all"]

    def hot(key, budget):
        rows = [r for r in hot_curve if r["false_alarms_per_image"] <= float(budget)]
        return max((r[key] for r in rows), default=0.0)

    with_pose, without = learned["with_pose"], learned["without_pose"]
    lines = [f"learned detector ({learned['model']}), calibrated score swept",
             f"{'':<34} {'learned':>8} {'no pose':>8} {'hot spots':>10}"]
    for key, name in (("person_recall", "person"), ("vehicle_recall", "vehicle")):
        for budget in ("1", "2", "5"):
            lines.append(f"{f'{name} recall at <= {budget} FA/image':<34} "
                         f"{with_pose['summary'][key][budget]:>8.3f} "
                         f"{without['summary'][key][budget]:>8.3f} {hot(key, budget):>10.3f}")
    row = with_pose["at_default_threshold"]
    accuracy = with_pose["class_accuracy"]
    ms = with_pose["ms_per_image"]
    lines += [
        f"at the default threshold {learned['default_threshold']:.3f}: person recall "
        f"{row['person_recall']:.3f}, vehicle recall {row['vehicle_recall']:.3f}, "
        f"{row['false_alarms_per_image']:.2f} FA/image; class named right: person "
        f"{accuracy['person']:.3f}, vehicle {accuracy['vehicle']:.3f}",
        f"ms per image, wall: learned {ms:.1f} (no pose {without['ms_per_image']:.1f}), hot "
        f"spots {hot_spots['ms_per_image']:.1f}, baseline {baseline['ms_per_image']:.1f} "
        f"(learned / baseline = {ms / baseline['ms_per_image']:.2f})",
        f"ms per image, CPU of the thread: learned {with_pose['cpu_ms_per_image']:.1f}, hot "
        f"spots {hot_spots['cpu_ms_per_image']:.1f}, baseline {baseline['cpu_ms_per_image']:.1f}",
    ]  # fmt: skip
    return "\n".join(lines)


def _curve_table(title: str, curve: list[dict], threshold_format: str) -> str:
    header = f"{'threshold':>9} {'person recall':>14} {'vehicle recall':>15} {'FA/image':>9}"
    lines = [title, header]
    for row in curve:
        lines.append(f"{threshold_format.format(row['threshold'])} "
                     f"{row['person_recall']:>14.3f} {row['vehicle_recall']:>15.3f} "
                     f"{row['false_alarms_per_image']:>9.2f}")  # fmt: skip
    return "\n".join(lines)


def _summary_table(ours: dict, baseline: dict) -> str:
    """Ours and the baseline side by side: all images, and our tuned-on / held-out halves."""
    head = (f"{'':<32} {'ours':>7} {'baseline':>9}   {'ours: tuned-on':>14} {'held-out':>9}")
    lines = [head]
    for budget in SUMMARY_BUDGETS:
        values = [s["person_recall_at_fa"][budget] for s in
                  (ours["all"], baseline["all"], ours["tuned_on"], ours["held_out"])]  # fmt: skip
        lines.append(f"{f'person recall at <= {budget} FA/image':<32} "
                     + _row(values, "{:.3f}"))  # fmt: skip
    for recall in SUMMARY_RECALLS:
        values = [s["fa_at_person_recall"][recall] for s in
                  (ours["all"], baseline["all"], ours["tuned_on"], ours["held_out"])]  # fmt: skip
        lines.append(f"{f'FA/image for person recall {recall}':<32} " + _row(values, "{:.1f}"))
    return "\n".join(lines)


def _row(values: list, number_format: str) -> str:
    text = ["—" if v is None else number_format.format(v) for v in values]
    return f"{text[0]:>7} {text[1]:>9}   {text[2]:>14} {text[3]:>9}"


def format_rendered(rendered: dict) -> str:
    if "skipped" in rendered:
        return f"rendered EO: skipped ({rendered['skipped']})"
    return rendered["report"]


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    report = {
        **results.header("detection", argv, "numpy", "opencv"),
        "quick": args.quick,
        "thermal": bench_thermal(args),
        "rendered_thermal": bench_rendered_thermal(args),
        "rendered_eo": bench_rendered(args),
    }
    rendered_thermal = report["rendered_thermal"]
    thermal_table = rendered_thermal.get("report") or (f"rendered thermal: skipped "
                                                      f"({rendered_thermal['skipped']})")
    table = "\n\n".join([format_thermal(report["thermal"]), thermal_table,
                          format_rendered(report["rendered_eo"])])
    json_name = "detection-quick" if args.quick else "detection"
    results.publish(table, report, json_name if args.json else None)
    return 0
