"""Train the learned thermal detector and export it for the edge.

    .venv/bin/pip install -e '.[train]'
    .venv/bin/python -m training.thermal.train --out edge/detection/models

Seeded end to end (NumPy, PyTorch, the split, the crops): the same command on
the same data gives the same model, up to PyTorch's own float reductions.

1. Data: HIT-UAV's training split (../shared/data/thermal/hit-uav-train), and
   thermal frames rendered by sim_hw from `rendered_scenes.toml` (a scenario
   no test or benchmark uses). A share of both, whole flights or drones at a
   time, is held out for model selection and calibration; HIT-UAV's
   validation split is not read.
2. Training: augmented crops (`data.sample_crop`), CenterNet's focal loss on
   the class heatmaps and L1 on box size and offset, AdamW with a cosine
   schedule, on `--threads` CPU threads.
3. Selection: every `--eval-every` steps, person and vehicle recall at one
   false alarm per image on the held-out real images; the best weights win.
4. Calibration on the held-out scenes: a logistic map from a maximum's peak
   to the probability that a target is there (Platt), a temperature for the
   class probabilities, and the default threshold (the score at which the
   held-out real images see `--false-alarms` false alarms per image).
5. Export: ONNX (opset 17, any frame size) with the calibration in its
   metadata, then the held-out figures measured again through the edge's own
   `LearnedThermalDetector` on the exported file; a JSON report beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import minimize, minimize_scalar

from edge.detection.thermal_learned import (
    Found,
    LearnedThermalDetector,
    LearnedThermalSettings,
    decode,
    geometry_planes,
    normalise,
    padded,
)
from training.thermal import data
from training.thermal.model import CLASSES, STRIDE, CentreNet, Exported

ROOT = Path(__file__).resolve().parents[2]
HIT_UAV_TRAIN = ROOT.parent / "shared" / "data" / "thermal" / "hit-uav-train"
SCENES = Path(__file__).resolve().parent / "rendered_scenes.toml"
MODEL_NAME = "thermal_centres"
FLOOR = 0.05  # peaks below this are not candidates at all
NO_BOX = -2  # a candidate's label in no labelled box: data.IGNORE is -1
MIN_CALIBRATION = 200  # held-out maxima a class needs for a calibration of its own


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=HIT_UAV_TRAIN)
    p.add_argument("--out", type=Path, default=ROOT / "edge" / "detection" / "models")
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--crop", type=int, default=160, help="side of a training crop, px")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--no-context", dest="context", action="store_false",
                   help="the network without its stride-32 stage")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--held-out", type=float, default=0.15, help="share of scenes held out")
    p.add_argument("--rendered-share", type=float, default=0.25,
                   help="share of each batch from rendered frames")
    p.add_argument("--rendered-times", type=int, default=100,
                   help="frames rendered per drone (alternately night and day)")
    p.add_argument("--false-alarms", type=float, default=0.6,
                   help="false alarms per held-out real image at the default threshold")
    p.add_argument("--limit", type=int, default=None, help="HIT-UAV images to read (smoke runs)")
    p.add_argument("--turn", type=float, default=0.0,
                   help="share of crops turned by quarters (data.Augment.turn)")
    p.add_argument("--init", type=Path, default=None,
                   help="start from these weights (a second stage of training)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="weights saved by an earlier run: calibrate and export them, no training")
    return p.parse_args(argv)


# --- loss -------------------------------------------------------------------------------


def focal_loss(logits, heat, weight):
    """CenterNet's penalty-reduced focal loss, per positive; `weight` 0 where ignored."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    positive = heat.eq(1).float()
    positives = positive.sum().clamp(min=1.0)
    pos = torch.log(p) * (1 - p) ** 2 * positive
    neg = torch.log(1 - p) * p**2 * (1 - heat) ** 4 * (1 - positive) * weight[:, None]
    return -(pos.sum() + neg.sum()) / positives


def box_loss(predicted, target, mask):
    mask = mask[:, None]
    return (torch.abs(predicted - target) * mask).sum() / mask.sum().clamp(min=1.0)


# --- held-out scoring --------------------------------------------------------------------


def candidates(net: CentreNet, scene: data.Scene) -> Found:
    """Every local maximum above FLOOR in the whole frame, through the PyTorch net."""
    image = padded(normalise(scene.image))
    planes = geometry_planes(data.geometry_of(scene), slice(0, image.shape[0]), image.shape[1],
                             STRIDE)  # fmt: skip
    with torch.no_grad():
        peaks, size, offset = Exported(net)(torch.from_numpy(image)[None, None],
                                            torch.from_numpy(planes)[None])  # fmt: skip
    return decode(peaks[0].numpy(), size[0].numpy(), offset[0].numpy(), STRIDE, FLOOR)


def outcome(boxes: np.ndarray, scene: data.Scene):
    """(hit (N,) per candidate: its centre in some labelled box; the label of that box
    (a class index or data.IGNORE), NO_BOX where none; inside (N, M): centre in box)."""
    centres = np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2])
    b = scene.boxes
    inside = ((centres[:, None, 0] >= b[None, :, 0]) & (centres[:, None, 0] <= b[None, :, 2])
              & (centres[:, None, 1] >= b[None, :, 1]) & (centres[:, None, 1] <= b[None, :, 3]))
    hit = inside.any(axis=1)
    label = np.full(len(boxes), NO_BOX)
    for k in np.flatnonzero(hit):
        label[k] = scene.labels[np.flatnonzero(inside[k])[0]]
    return hit, label, inside


def curve(scored: list[tuple[np.ndarray, data.Scene]], thresholds) -> list[dict]:
    """Person and vehicle recall and false alarms per image at each score threshold.
    `scored`: per scene, (scores of its candidates, boxes) pairs as (scores, boxes), scene."""
    rows = []
    for threshold in thresholds:
        found = {c: 0 for c in ("person", "vehicle")}
        total = dict(found)
        false_alarms = 0
        for (scores, boxes), scene in scored:
            keep = scores >= threshold
            hit, _, inside = outcome(boxes[keep], scene)
            false_alarms += int((~hit).sum())
            seen = inside.any(axis=0)
            for name in found:
                wanted = scene.labels == CLASSES.index(name)
                total[name] += int(wanted.sum())
                found[name] += int((seen & wanted).sum())
        rows.append({"threshold": float(threshold),
                     "person_recall": found["person"] / max(total["person"], 1),
                     "vehicle_recall": found["vehicle"] / max(total["vehicle"], 1),
                     "false_alarms_per_image": false_alarms / max(len(scored), 1)})
    return rows


def recall_at(rows: list[dict], key: str, budget: float) -> float:
    return max((r[key] for r in rows if r["false_alarms_per_image"] <= budget), default=0.0)


def summary(rows: list[dict]) -> dict:
    return {f"{key}_at_{b:g}_fa": recall_at(rows, key, b)
            for key in ("person_recall", "vehicle_recall") for b in (1, 2, 5)}


THRESHOLDS = np.concatenate([np.linspace(0.05, 0.9, 35), np.linspace(0.91, 0.99, 9)])


def held_out_figures(net, scenes: list[data.Scene]) -> dict:
    net.eval()
    scored = []
    for scene in scenes:
        found = candidates(net, scene)
        scored.append(((found.peaks.max(axis=1), found.boxes), scene))
    net.train()
    return summary(curve(scored, THRESHOLDS))


# --- calibration --------------------------------------------------------------------------


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def calibrate(net, scenes: list[data.Scene]) -> dict:
    """Platt scaling of the peak, the class temperature, from the held-out scenes."""
    net.eval()
    peaks, hits, named, class_peaks, truths = [], [], [], [], []
    for scene in scenes:
        found = candidates(net, scene)
        hit, label, _ = outcome(found.boxes, scene)
        usable = label != data.IGNORE  # on an ignored box: neither right nor wrong
        peaks.append(found.peaks.max(axis=1)[usable])
        named.append(np.argmax(found.peaks, axis=1)[usable])
        hits.append(hit[usable])
        known = hit & (label >= 0)
        class_peaks.append(found.peaks[known])
        truths.append(label[known])
    x, y = _logit(np.concatenate(peaks)), np.concatenate(hits).astype(float)
    named = np.concatenate(named)
    overall = platt(x, y)
    # Per named class; a class with too few maxima to fit keeps the overall map.
    per_class = [platt(x[named == c], y[named == c]) if (named == c).sum() >= MIN_CALIBRATION
                 else overall for c in range(len(CLASSES))]  # fmt: skip
    logits, truth = _logit(np.concatenate(class_peaks)), np.concatenate(truths)

    def class_loss(temperature):
        z = logits / temperature
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(truth)), truth]))

    temperature = minimize_scalar(class_loss, bounds=(0.05, 20.0), method="bounded").x
    return {"score_calibration": per_class, "class_temperature": float(temperature),
            "candidates": int(len(y)), "class_samples": int(len(truth)),
            "candidates_by_class": {c: int((named == k).sum()) for k, c in enumerate(CLASSES)}}


def platt(x: np.ndarray, y: np.ndarray) -> list[float]:
    """(a, b) of the logistic map from logit(peak) x to hit y, by maximum likelihood."""

    def loss(ab):
        z = ab[0] * x + ab[1]
        return float(np.mean(np.logaddexp(0, z) - y * z))

    return [float(v) for v in minimize(loss, [1.0, 0.0], method="Nelder-Mead").x]


# --- export -------------------------------------------------------------------------------


def export(net: CentreNet, path: Path, card: dict) -> None:
    import onnx

    net.eval()
    image, planes = torch.zeros(1, 1, 512, 640), torch.zeros(1, 3, 128, 160)
    torch.onnx.export(Exported(net), (image, planes), str(path),
                      input_names=["image", "geometry"], output_names=["peaks", "size", "offset"],
                      dynamic_axes={"image": {2: "height", 3: "width"},
                                    "geometry": {2: "rows", 3: "columns"}},
                      opset_version=17, dynamo=False)  # fmt: skip
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "dunewatch", json.dumps(card)
    model.producer_name = "dunewatch training/thermal/train.py"
    onnx.save(model, str(path))


def edge_figures(path: Path, scenes: list[data.Scene]) -> dict:
    """The held-out curve through the edge's detector on the exported file (calibrated
    scores, geometry from the scene, rows read as the edge reads them)."""
    from edge.detection.thermal_learned import rows_to_read

    detector = LearnedThermalDetector(None, LearnedThermalSettings(model=path))
    scored, seconds = [], 0.0
    for scene in scenes:
        start = time.perf_counter()
        image = normalise(scene.image)
        geometry = data.geometry_of(scene)
        rows = rows_to_read(geometry, image.shape[0])
        boxes, scores, _ = detector._scored(image, geometry, rows, FLOOR)
        seconds += time.perf_counter() - start
        scored.append(((scores, boxes), scene))
    rows_ = curve(scored, THRESHOLDS)
    return {**summary(rows_), "ms_per_image": 1e3 * seconds / max(len(scenes), 1),
            "curve": rows_}


def _shown(path: Path) -> str:
    """A path as the report shows it: relative to the project where it lies within reach."""
    try:
        return os.path.relpath(path.resolve(), ROOT)
    except ValueError:
        return str(path)


def threshold_for(rows: list[dict], false_alarms: float) -> float:
    """The lowest threshold whose false alarms per image are within the budget."""
    within = [r["threshold"] for r in rows if r["false_alarms_per_image"] <= false_alarms]
    return min(within) if within else max(r["threshold"] for r in rows)


def train(net: CentreNet, args, augment: data.Augment, scenes: list[data.Scene],
          real_held: list[data.Scene], rendered_held: list[data.Scene], rng,
          started: float) -> list[dict]:  # fmt: skip
    """Train `net` in place; it ends with the weights that did best on the held-out real
    images. Returns the held-out figures at each evaluation."""
    optimiser = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    warm_up = max(0.05, 2.0 / args.steps)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, total_steps=args.steps,
                                                   pct_start=warm_up)  # fmt: skip
    best, best_state, history = -1.0, None, []
    for step in range(1, args.steps + 1):
        image, planes, heat, weight, size, offset, mask = (
            torch.from_numpy(a) for a in data.batch(scenes, args.batch, augment, rng,
                                                     args.rendered_share))
        logits, size_out, offset_out = net(image, planes)
        loss_heat = focal_loss(logits, heat, weight)
        loss_size = box_loss(size_out, size, mask)
        loss_offset = box_loss(offset_out, offset, mask)
        loss = loss_heat + 0.1 * loss_size + loss_offset
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.3f} (heat {loss_heat.item():.3f} size "
                  f"{loss_size.item():.3f} offset {loss_offset.item():.3f}) "
                  f"{time.time() - started:.0f} s", flush=True)
        if step % args.eval_every == 0 or step == args.steps:
            figures = held_out_figures(net, real_held)
            rendered_figures = held_out_figures(net, rendered_held)
            merit = figures["person_recall_at_1_fa"] + figures["vehicle_recall_at_1_fa"]
            history.append({"step": step, "real": figures, "rendered": rendered_figures})
            print(f"held out at {step}: real {figures} rendered {rendered_figures}", flush=True)
            if merit > best:
                best, best_state = merit, {k: v.clone() for k, v in net.state_dict().items()}
                # The weights, for a second stage (--init) or a re-export (--checkpoint);
                # not shipped (the ONNX file holds them).
                torch.save(best_state, args.out / f"{MODEL_NAME}.best.pt")
    net.load_state_dict(best_state)
    return history


# --- the run ------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    started = time.time()

    real = data.hit_uav_scenes(args.data, args.data / "train.json")
    if args.limit:
        real = real[:: max(1, len(real) // args.limit)]
    times = np.linspace(20.0, 590.0, args.rendered_times)
    rendered = data.rendered_scenes(SCENES, times, args.seed)
    real_train, real_held = data.split_by_group(real, args.held_out, rng)
    rendered_train, rendered_held = data.split_by_group(rendered, 0.25, rng)
    print(f"scenes: real {len(real_train)} + {len(real_held)} held out, rendered "
          f"{len(rendered_train)} + {len(rendered_held)} held out "
          f"({time.time() - started:.0f} s)", flush=True)

    augment = data.Augment(crop=args.crop, turn=args.turn)
    args.out.mkdir(parents=True, exist_ok=True)
    net = CentreNet(args.width, args.context)
    if args.init is not None:
        net.load_state_dict(torch.load(args.init))
    if args.checkpoint is None:
        history = train(net, args, augment, real_train + rendered_train, real_held,
                        rendered_held, rng, started)  # fmt: skip
        best_step = max(history, key=lambda h: h["real"]["person_recall_at_1_fa"]
                        + h["real"]["vehicle_recall_at_1_fa"])["step"]  # fmt: skip
    else:  # calibrate and export weights trained before (a run cut short, or a re-export)
        net.load_state_dict(torch.load(args.checkpoint))
        history, best_step = [], None
        earlier = args.out / f"{MODEL_NAME}.training.json"
        if earlier.is_file():  # the training run's own record of its evaluations
            trained = json.loads(earlier.read_text())
            history, best_step = trained["history"], trained["best_step"]
            started -= trained["training_seconds"]

    calibration = calibrate(net, real_held + rendered_held)
    path = args.out / f"{MODEL_NAME}.onnx"
    card = {"classes": list(CLASSES), "stride": STRIDE, "threshold": 0.5,
            "score_calibration": calibration["score_calibration"],
            "class_temperature": calibration["class_temperature"]}
    export(net, path, card)
    real_edge = edge_figures(path, real_held)
    card["threshold"] = threshold_for(real_edge["curve"], args.false_alarms)
    export(net, path, card)  # again, with the threshold the calibrated scores gave
    rendered_edge = edge_figures(path, rendered_held)
    report = {
        "command": "python -m training.thermal.train "
                   + " ".join(sys.argv[1:] if argv is None else argv),
        "settings": {k: _shown(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "augment": asdict(augment),
        "scenes": {"real_train": len(real_train), "real_held_out": len(real_held),
                   "rendered_train": len(rendered_train), "rendered_held_out": len(rendered_held),
                   "held_out_groups": sorted({s.group for s in real_held + rendered_held})},
        "parameters": sum(p.numel() for p in net.parameters()),
        "best_step": best_step,
        "history": history,
        "calibration": calibration,
        "card": card,
        "held_out_edge": {"real": {k: v for k, v in real_edge.items() if k != "curve"},
                          "rendered": {k: v for k, v in rendered_edge.items() if k != "curve"}},
        "model_bytes": path.stat().st_size,
        "training_seconds": time.time() - started,
        "torch": torch.__version__,
    }  # fmt: skip
    (args.out / f"{MODEL_NAME}.training.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["held_out_edge"], indent=1))
    print(f"wrote {path} ({path.stat().st_size} bytes) in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

