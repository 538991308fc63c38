"""What a simulated camera is: its image, lens and mode, and how imperfect it is.

Its own module so that the renderer and the image formation both read it
without importing each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim_hw.camera.geometry import Intrinsics
from sim_hw.camera.illumination import LIGHTING

MODES = ("eo", "thermal")


# The thermal core is fixed-gain: its 256 levels span this many kelvin, bare sand held at a
# fixed level, as a radiometric core's would be; a node may be told its kelvin per level.
THERMAL_SPAN_K = 45.0
THERMAL_KELVIN_PER_LEVEL = THERMAL_SPAN_K / 255.0


@dataclass(frozen=True)
class CameraSpec:
    """The camera: its image, lens and mode, and how strong its imperfections are."""

    width: int = 1280
    height: int = 720
    hfov_deg: float = 60.0
    mode: str = "eo"  # or "thermal"
    fps: float = 25.0
    noise: float = 1.0  # scale of the sensor's noise; 0 for none
    blur: float = 1.0  # scale of the motion blur and the thermal lens's blur; 0 for none
    brightness_drift: float = 0.05  # relative amplitude of the gain's slow wander
    exposure_s: float | None = None  # None: 2 ms by day to 33 ms at night; thermal 12 ms
    lighting: str = "scene"  # "scene": the scenario's clock; "day" / "night": force
    visibility_m: float = 20_000.0
    thermal_scale: float = 0.5  # a thermal core renders at this fraction of the output size
    # EO: the ground texture is sampled at this fraction of the output size and enlarged
    # (demosaicing and compression leave little 1-px texture in real video); 1.0 costs 2x.
    ground_scale: float = 0.5

    def __post_init__(self):
        problems = []
        if self.mode not in MODES:
            problems.append(f"mode {self.mode!r} is not one of {MODES}")
        if self.lighting not in LIGHTING:
            problems.append(f"lighting {self.lighting!r} is not one of {LIGHTING}")
        if not (isinstance(self.width, int) and isinstance(self.height, int)
                and 16 <= self.width <= 8192 and 16 <= self.height <= 8192):  # fmt: skip
            problems.append(f"size {self.width}x{self.height} is not 16..8192 px a side")
        checks = {
            "hfov_deg": 0 < self.hfov_deg < 170, "fps": 0 < self.fps <= 240,
            "noise": self.noise >= 0, "blur": self.blur >= 0,
            "brightness_drift": 0 <= self.brightness_drift < 1,
            "visibility_m": self.visibility_m > 0, "thermal_scale": 0.1 <= self.thermal_scale <= 1,
            "ground_scale": 0.1 <= self.ground_scale <= 1,
            "exposure_s": self.exposure_s is None or 0 <= self.exposure_s <= 1,
        }  # fmt: skip
        for name, ok in checks.items():
            value = getattr(self, name)
            if (value is not None and not math.isfinite(value)) or not ok:
                problems.append(f"{name} = {value!r} is out of range")
        if problems:
            raise ValueError("CameraSpec: " + "; ".join(problems))

    @property
    def intrinsics(self) -> Intrinsics:
        return Intrinsics.from_hfov(self.width, self.height, math.radians(self.hfov_deg))
