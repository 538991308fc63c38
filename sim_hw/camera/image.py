"""How a simulated camera's picture forms, given where it looks and what stands there.

EO: the terrain and detail layers sampled through the ground homography on
a smaller image (`CameraSpec.ground_scale`), multiplied, coloured for the
light (by night a low-light camera: darker, greyer), enlarged; then shadows,
the solids painted far to near, haze and sky, motion blur and noise at full
size.

Thermal: the ground's temperature over bare sand (a layer mixed for the hour's
solar heating) turned into grey levels by the AGC, which holds bare sand at 40 %
grey over a 45 K span; solids at their surface temperatures (a vehicle's
bonnet hotter); haze toward the air's temperature, a cold sky; all on a core
`thermal_scale` of the output size, enlarged, then the lens's blur, the motion
smear of the bolometer's time constant, its fixed pattern and temporal noise.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sim_hw.camera.geometry import View
from sim_hw.camera.ground_texture import THERMAL_COUNTS_PER_K, THERMAL_OFFSET, Layer, ground_texture
from sim_hw.camera.illumination import ENGINE_C, Conditions
from sim_hw.camera.scene import (
    OCCLUDER,
    Solid,
    WarmPatch,
    darken_hull,
    draw_flat,
    draw_solid,
    shadow_outline,
)
from sim_hw.camera.sensor import (
    NoiseField,
    apply_atmosphere,
    brightness_gain,
    gaussian_noise,
    motion_blur,
    thermal_fixed_pattern,
)
from sim_hw.camera.spec import THERMAL_SPAN_K, CameraSpec

BAND_ROWS = 8  # rows that share one mip-level decision
THERMAL_SAND_GREY = 0.4
THERMAL_TIME_CONSTANT_S = 0.012  # a microbolometer smears over about this long
SHADOW_SUN_ELEVATION = math.radians(2.0)  # below this the sun casts no shadow worth drawing
DAY_HAZE = (214, 204, 194)  # BGR
NIGHT_HAZE = (70, 64, 60)
LUMA = np.array([0.114, 0.587, 0.299])  # of B, G, R


class Imager:
    """Forms the images of one camera (`spec`) with the ground texture of `seed`."""

    def __init__(self, spec: CameraSpec, seed: int, occluders: list[Solid],
                 warm_ground: list[WarmPatch] = ()):  # fmt: skip
        self.spec, self.seed, self.occluders = spec, seed, occluders
        self.warm_ground = list(warm_ground)
        self.texture = ground_texture(seed)
        rng = np.random.default_rng([seed, 0xCA3E])
        self._phases = tuple(rng.uniform(0, 2 * math.pi, 2))
        self._noise: dict[float, NoiseField] = {}
        self._fixed_pattern = None
        if spec.mode == "thermal":
            shape = (spec.height, spec.width)
            self._fixed_pattern = thermal_fixed_pattern(shape, 1.5 * spec.noise, rng)

    def exposure_s(self, light: Conditions) -> float:
        """The spec's, or as auto exposure sets it: 2 ms in daylight to 33 ms at night."""
        if self.spec.exposure_s is not None:
            return self.spec.exposure_s
        if self.spec.mode == "thermal":
            return THERMAL_TIME_CONSTANT_S
        return 0.002 + 0.031 * (1.0 - light.daylight)

    def image(self, view: View, light: Conditions, t: float, solids: list[Solid],
              streak: tuple[float, float], rng) -> np.ndarray:  # fmt: skip
        """The frame at scenario time t; `streak` is the image motion during the exposure,
        `rng` this frame's noise."""
        if self.spec.mode == "eo":
            return self._eo(view, light, t, solids, streak, rng)
        return self._thermal(view, light, t, solids, streak, rng)

    # --- the two modes ---

    def _eo(self, view, light: Conditions, t, solids, streak, rng) -> np.ndarray:
        spec = self.spec
        gain = (0.6 + 0.4 * light.daylight) * brightness_gain(t, spec.brightness_drift,
                                                              self._phases)  # fmt: skip
        saturation = 0.3 + 0.7 * light.daylight  # a low-light camera sees little colour
        colour = gain * (saturation * np.eye(3) + (1 - saturation) * np.tile(LUMA, (3, 1)))
        terrain = self._ground(self.texture.terrain, view, spec.ground_scale, 3)
        detail = self._ground(self.texture.detail, view, spec.ground_scale, 1)
        ground = cv2.multiply(terrain, cv2.merge([detail] * 3), scale=1 / 128)
        ground = cv2.transform(ground, colour)
        image = cv2.resize(ground, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
        if light.sun_elevation > SHADOW_SUN_ELEVATION:  # skylight keeps shadows from black
            self._shadows(image, view, solids, light, 1.0 - 0.45 * light.daylight, 1.0)
        for solid in self._far_to_near(view, solids):
            base = colour @ solid.colour()
            draw_solid(image, view, solid, 0.75 * base, base, 1.0)  # sides in half shade
        haze = np.array(NIGHT_HAZE) + (np.array(DAY_HAZE) - NIGHT_HAZE) * light.daylight
        apply_atmosphere(image, view, 1.0, spec.visibility_m, haze.round().astype(np.uint8))
        image = motion_blur(image, streak)
        sigma = (2.0 + 6.0 * (1.0 - light.daylight)) * spec.noise  # gain lifts noise at night
        self._noise_field(image.shape, sigma).apply(image, rng)
        return image

    def _thermal(self, view, light: Conditions, t, solids, streak, rng) -> np.ndarray:
        spec = self.spec
        scale = spec.thermal_scale
        # The AGC holds bare sand at a fixed grey, wandering a little as real cores do.
        drift = spec.brightness_drift * 20.0 * (brightness_gain(t, 1.0, self._phases) - 1.0)
        low = light.sand_c - THERMAL_SAND_GREY * THERMAL_SPAN_K + drift

        def grey(celsius):
            return float(np.clip((celsius - low) * 255.0 / THERMAL_SPAN_K, 0, 255))

        encoded = self._ground(self.texture.thermal(light.heat), view, scale, 1)
        kelvin = (np.arange(256) - THERMAL_OFFSET) / THERMAL_COUNTS_PER_K
        lut = np.clip((light.sand_c + kelvin - low) * 255.0 / THERMAL_SPAN_K, 0, 255)
        image = cv2.LUT(encoded, lut.astype(np.uint8))
        if light.sun_elevation > SHADOW_SUN_ELEVATION:  # shaded sand is cooler
            self._shadows(image, view, solids, light, 1.0 - 0.3 * light.heat, scale)
        # Warm ground holds the day's heat into the night; the afternoon sun evens it out.
        for patch in self.warm_ground:
            warmth = grey(light.sand_c + patch.contrast_k * (1.0 - light.heat))
            draw_flat(image, view, patch.outline, warmth, scale)
        for solid in self._far_to_near(view, solids):
            if solid.kind == OCCLUDER:
                body = grey(light.outcrop_c())
            else:
                body = grey(light.body_c(solid.kind))
            hood = grey(ENGINE_C) if solid.kind == "vehicle" else None
            draw_solid(image, view, solid, body, body, scale, hood=hood)
        apply_atmosphere(image, view, scale, spec.visibility_m, grey(light.air_c),
                         grey(light.sky_c))  # fmt: skip
        image = cv2.resize(image, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
        if spec.blur > 0:  # the germanium lens and the pixel's own spread
            image = cv2.GaussianBlur(image, (0, 0), 0.7 * spec.blur)
        image = motion_blur(image, streak)
        self._fixed_pattern.apply(image)
        self._noise_field(image.shape, 1.2 * spec.noise).apply(image, rng)
        return image

    # --- parts ---

    def _ground(self, layer: Layer, view: View, scale: float, channels: int) -> np.ndarray:
        """The layer as the camera sees it, on an image `scale` times the camera's size, each
        band of rows from the mip level that matches its ground sampling distance. Rows that
        see only sky stay black (the atmosphere paints them)."""
        height = max(1, round(self.spec.height * scale))
        width = max(1, round(self.spec.width * scale))
        image = np.zeros((height, width, channels) if channels > 1 else (height, width), np.uint8)
        en_from_pixels = view.en_from_pixels(scale)
        near = (float(view.position[0]), float(view.position[1]))
        middle_rows = np.minimum(np.arange(0, height, BAND_ROWS) + BAND_ROWS / 2, height)
        v = (middle_rows + 0.5) / scale
        # Each band takes the finest sampling along its middle row (at its ends or middle):
        # a little aliasing where the rest of the row is coarser, rather than blur.
        per_pixel = np.min([view.metres_per_pixel(np.full_like(v, (x + 0.5) / scale), v)
                            for x in (0, width / 2, width - 1)], axis=0) / scale  # fmt: skip
        sees_ground = np.isfinite(per_pixel)
        levels = np.where(sees_ground, layer.level_for(np.where(sees_ground, per_pixel, 1.0)), -1)
        for level, first, end in _runs(levels):
            if level < 0:
                continue
            top, bottom = first * BAND_ROWS, min(end * BAND_ROWS, height)
            shift = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, top], [0.0, 0.0, 1.0]])
            layer.sample(int(level), near, en_from_pixels @ shift, image[top:bottom])
        return image

    def _shadows(self, image, view, solids, light: Conditions, factor: float, scale: float):
        for solid in [*self.occluders, *solids]:
            outline = shadow_outline(solid, light.sun_elevation, light.sun_azimuth)
            darken_hull(image, view, outline, factor, scale)

    def _far_to_near(self, view: View, solids: list[Solid]) -> list[Solid]:
        """The painter's order: whatever is nearer is painted later, over what it hides."""
        everything = [*self.occluders, *solids]
        distance = [float(np.linalg.norm(s.centre - view.position)) for s in everything]
        order = np.argsort(distance)[::-1]
        return [everything[k] for k in order]

    def _noise_field(self, shape, sigma: float) -> NoiseField:
        key = round(sigma, 1)  # night falls slowly: a handful of fields at most
        if key not in self._noise:
            rng = np.random.default_rng([self.seed, 0x401E, int(key * 10)])
            self._noise[key] = gaussian_noise(shape, key, rng)
        return self._noise[key]


def _runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(value, first, end) of each run of equal values."""
    edges = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(values)]])
    return [(int(values[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]
