"""A metric desert ground texture, endless and deterministic from a seed.

The ground is two periodic layers fixed to the scenario's ENU frame (east,
north metres), each sampled through the camera's ground-to-image homography:

- terrain (colour, 0.37 m texels, 758 m period): sand of dune-scale light and
  shade, gravel and rock patches, scrub bushes, vehicle tracks (pairs of ruts);
- detail (grey, 0.043 m texels, 88 m period): grain, wind ripples, pebbles, a
  brightness factor around 1 that gives the ground texture at the pixel scale.

The periods differ and are not in a simple ratio, so no repeat shows where the
two combine. Each layer keeps a mip pyramid (each level the 2 x 2 average of
the one below, which stays periodic), and an image band is sampled from the
level whose texel matches its ground sampling distance: coarser would blur,
finer would alias into noise. The terrain also yields two thermal layers: how
much warmer than bare sand each spot is by day and by night.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

TERRAIN_TEXELS = 2048
TERRAIN_TEXEL_M = 0.37
DETAIL_TEXELS = 2048
DETAIL_TEXEL_M = 0.043
SMALLEST_LEVEL = 8  # texels on a side of the coarsest mip level
THERMAL_OFFSET = 128.0  # thermal layers are uint8: 128 + THERMAL_COUNTS_PER_K * kelvin
THERMAL_COUNTS_PER_K = 8.0

# BGR
SAND_LIGHT = np.array([132, 176, 210], np.float32)
SAND_SHADE = np.array([104, 146, 184], np.float32)
GRAVEL = np.array([84, 104, 128], np.float32)
SCRUB = np.array([48, 80, 84], np.float32)


@dataclass(frozen=True)
class Layer:
    """A periodic raster on the ground and its mip pyramid; level 0 is the finest."""

    levels: tuple[np.ndarray, ...]
    texel_m: float  # level 0

    @property
    def period_m(self) -> float:
        return self.levels[0].shape[1] * self.texel_m

    def level_for(self, metres_per_pixel: np.ndarray) -> np.ndarray:
        """The level whose texel best matches each pixel's size on the ground."""
        ratio = np.maximum(metres_per_pixel / self.texel_m, 1.0)
        return np.clip(np.round(np.log2(ratio)), 0, len(self.levels) - 1).astype(int)

    def sample(self, level: int, near: tuple[float, float], en_from_dst: np.ndarray,
               dst: np.ndarray) -> None:  # fmt: skip
        """Fill `dst` with level `level` seen through `en_from_dst` (a homography from dst's
        pixel centres to east, north) where the ground seen lies near `near`."""
        M = self.tile_from_ground(level, near) @ en_from_dst
        cv2.warpPerspective(self.levels[level], M, (dst.shape[1], dst.shape[0]), dst=dst,
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_WRAP)  # fmt: skip

    def tile_from_ground(self, level: int, near: tuple[float, float]) -> np.ndarray:
        """(east, north) -> texel coordinates of `level` (texel centres on integers, rows
        running south), shifted by whole periods so that points near `near` get small
        coordinates: the warp keeps its precision wherever in the world it looks."""
        texel = self.texel_m * 2**level
        period = self.period_m
        east0 = math.floor(near[0] / period) * period
        north0 = math.floor(near[1] / period) * period
        return np.array([
            [1.0 / texel, 0.0, -east0 / texel - 0.5],
            [0.0, -1.0 / texel, north0 / texel - 0.5],
            [0.0, 0.0, 1.0],
        ])  # fmt: skip


@dataclass(frozen=True, eq=False)  # compared (and cached) by identity: it is made once per seed
class GroundTexture:
    terrain: Layer  # BGR uint8
    detail: Layer  # uint8, 128 is a factor of 1
    thermal_day: np.ndarray  # uint8 at terrain texels: kelvin over bare sand, in the sun
    thermal_night: np.ndarray  # the same at night

    def thermal(self, heat: float) -> Layer:
        """The thermal layer for a solar heating between 0 (night) and 1 (afternoon)."""
        return _thermal_layer(self, round(min(max(heat, 0.0), 1.0), 2))


@functools.lru_cache(maxsize=4)
def ground_texture(seed: int) -> GroundTexture:
    """The texture of `seed` (about a second to make; kept for reuse)."""
    rng = np.random.default_rng([seed, 0x5A4D])
    fields = _terrain_fields(rng, TERRAIN_TEXELS)
    terrain = _terrain_colour(fields)
    detail = _detail(rng, DETAIL_TEXELS)
    day = 3.0 * fields["gravel"] - 7.0 * fields["scrub"] + 1.5 * fields["tracks"] \
        - 2.0 * fields["light"] + 0.8 * fields["grain"]  # fmt: skip
    night = 3.5 * fields["gravel"] + 1.0 * fields["scrub"] + 0.4 * fields["grain"]
    return GroundTexture(
        terrain=Layer(pyramid(terrain), TERRAIN_TEXEL_M),
        detail=Layer(pyramid(detail), DETAIL_TEXEL_M),
        thermal_day=_encode_kelvin(day),
        thermal_night=_encode_kelvin(night),
    )


@functools.lru_cache(maxsize=8)
def _thermal_layer(texture: GroundTexture, heat: float) -> Layer:
    mixed = cv2.addWeighted(texture.thermal_day, heat, texture.thermal_night, 1.0 - heat, 0.0)
    return Layer(pyramid(mixed), TERRAIN_TEXEL_M)


def _encode_kelvin(kelvin: np.ndarray) -> np.ndarray:
    counts = THERMAL_OFFSET + THERMAL_COUNTS_PER_K * kelvin
    return np.clip(counts, 0, 255).astype(np.uint8)


def pyramid(tile: np.ndarray) -> tuple[np.ndarray, ...]:
    """Level 0 and its exact 2 x 2 means down to SMALLEST_LEVEL texels (periodic all the way)."""
    levels = [tile]
    while levels[-1].shape[0] > SMALLEST_LEVEL:
        top = levels[-1]
        half = (top.shape[1] // 2, top.shape[0] // 2)
        levels.append(cv2.resize(top, half, interpolation=cv2.INTER_AREA))
    return tuple(levels)


# --- periodic building blocks ----------------------------------------------------------


def periodic_upsample(grid: np.ndarray, size: int) -> np.ndarray:
    """Bicubic enlargement of a periodic grid to `size` texels a side, still periodic."""
    cells = grid.shape[0]
    if cells >= size:
        return grid
    scale = size // cells
    pad = 2  # the bicubic reach: the padded copy hands every border texel its wrapped neighbours
    grown = cv2.resize(np.pad(grid, pad, mode="wrap"), ((cells + 2 * pad) * scale,) * 2,
                       interpolation=cv2.INTER_CUBIC)  # fmt: skip
    start = pad * scale
    return grown[start:start + size, start:start + size]  # fmt: skip


def fractal(rng, size: int, coarsest: int, finest: int, roughness: float = 0.6) -> np.ndarray:
    """Octaves of lattice noise from `coarsest` to `finest` cells a side, scaled to unit std.

    Each octave is added at its own lattice size and the sum enlarged twofold
    before the next: the cost is that of about one full-size enlargement.
    """
    total = rng.standard_normal((coarsest, coarsest), dtype=np.float32)
    cells, amplitude = coarsest, 1.0
    while cells < finest:
        cells, amplitude = cells * 2, amplitude * roughness
        total = periodic_upsample(total, cells)
        total += amplitude * rng.standard_normal((cells, cells), dtype=np.float32)
    total = periodic_upsample(total, size)
    return total / max(float(total.std()), 1e-6)


def periodic_wave(size: int, cycles: tuple[int, int], phase: np.ndarray) -> np.ndarray:
    """sin of a plane wave with whole cycles across the tile (so it tiles), phase-warped."""
    step = np.float32(2 * math.pi / size)
    x = np.arange(size, dtype=np.float32) * (cycles[0] * step)
    y = np.arange(size, dtype=np.float32) * (cycles[1] * step)
    return np.sin(x[None, :] + y[:, None] + phase)


def smoothstep(x: np.ndarray, low: float, high: float) -> np.ndarray:
    t = np.clip((x - low) / (high - low), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def wrap_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur on the torus (OpenCV's filters have no wrapping border)."""
    pad = int(math.ceil(3 * sigma)) + 1
    blurred = cv2.GaussianBlur(np.pad(image, pad, mode="wrap"), (0, 0), sigma)
    return blurred[pad:-pad, pad:-pad]


# --- the two layers ---------------------------------------------------------------------


def _terrain_fields(rng, size: int) -> dict[str, np.ndarray]:
    """Material maps in 0..1 (grain about 0 +-1), all periodic."""
    warp = 2.5 * fractal(rng, size, 4, 32)
    dunes = 0.5 + 0.5 * periodic_wave(size, (9, 23), warp)  # crests about 30 m apart
    light = np.clip(0.55 * dunes + 0.25 * fractal(rng, size, 4, 64) + 0.2, 0.0, 1.0)
    gravel = smoothstep(fractal(rng, size, 4, 256), 0.5, 1.3)
    grain = fractal(rng, size, 128, size, roughness=0.8)
    wadi = smoothstep(fractal(rng, size, 4, 16), 0.2, 1.0)  # where scrub grows
    return {
        "light": light, "gravel": gravel, "grain": grain,
        "scrub": _scrub(rng, size, wadi), "tracks": _tracks(rng, size),
    }  # fmt: skip


def _terrain_colour(f: dict[str, np.ndarray]) -> np.ndarray:
    light, gravel = f["light"][..., None], f["gravel"][..., None]
    colour = SAND_SHADE + (SAND_LIGHT - SAND_SHADE) * light
    colour = colour + (GRAVEL - colour) * gravel
    # Gravel is rougher than sand: its grain is stronger.
    colour = colour * (1.0 + (0.05 + 0.12 * gravel) * f["grain"][..., None])
    colour = colour * (1.0 - 0.16 * f["tracks"][..., None])  # compacted, shadowed ruts
    colour = colour + (SCRUB - colour) * f["scrub"][..., None]
    return np.clip(colour, 0, 255).astype(np.uint8)


def _scrub(rng, size: int, wadi: np.ndarray) -> np.ndarray:
    """Coverage of round bushes 0.6-2.4 m across, dense in the wadis, rare elsewhere."""
    canvas = np.zeros((size, size), np.float32)
    candidates = rng.uniform(0, size, (6000, 2))
    keep = rng.uniform(0, 1, len(candidates)) < 0.04 + 0.6 * wadi[
        candidates[:, 1].astype(int), candidates[:, 0].astype(int)]  # fmt: skip
    radii_m = rng.uniform(0.3, 1.2, len(candidates))
    for (x, y), radius_m in zip(candidates[keep], radii_m[keep], strict=True):
        radius = radius_m / TERRAIN_TEXEL_M
        for dx in (-size, 0, size):  # copies across the edges keep the tile periodic
            for dy in (-size, 0, size):
                if -radius <= x + dx <= size + radius and -radius <= y + dy <= size + radius:
                    cv2.circle(canvas, tuple(_fixed((x + dx, y + dy))), int(radius * 16), 1.0,
                               -1, cv2.LINE_AA, 4)  # fmt: skip
    return canvas


def _tracks(rng, size: int) -> np.ndarray:
    """Coverage of vehicle tracks: pairs of ruts 1.7 m apart that wander across the tile
    and close on themselves across its edges (whole cycles of slope and wander)."""
    canvas = np.zeros((size, size), np.float32)
    s = np.linspace(0.0, 1.0, 1200)
    for slope, transpose in ((0, False), (1, False), (0, True), (-1, True)):
        offset = rng.uniform(0.2, 0.8) * size
        wander = sum(rng.uniform(5, 30) / TERRAIN_TEXEL_M * np.sin(2 * math.pi * k * s
                     + rng.uniform(0, 2 * math.pi)) for k in (1, 2, 5))  # fmt: skip
        across = offset + slope * s * size + wander
        along = s * size
        normal = np.gradient(across, along)
        half_gauge = 0.85 / TERRAIN_TEXEL_M / np.sqrt(1 + normal**2)
        strength = rng.uniform(0.5, 1.0)
        for side in (-1, 1):
            rut = across + side * half_gauge
            for shift in (-size, 0, size):
                points = np.stack([along, rut + shift], axis=1)
                if transpose:
                    points = points[:, ::-1]
                cv2.polylines(canvas, [_fixed(points)], False, strength, 1, cv2.LINE_AA, 4)
    return canvas


def _detail(rng, size: int) -> np.ndarray:
    """Brightness factor x 128: grain, wind ripples (0.35 m) in patches, pebbles."""
    grain = fractal(rng, size, 256, size, roughness=0.85)
    ripples = periodic_wave(size, (221, 142), 4.0 * fractal(rng, size, 8, 128))
    ripple_patches = smoothstep(fractal(rng, size, 8, 64), 0.3, 1.2)
    impulses = (rng.uniform(0, 1, (size, size)) < 0.004) * rng.choice([-1.0, 1.0], (size, size))
    pebbles = wrap_blur(impulses.astype(np.float32), 0.8) * 6.0
    factor = 1.0 + 0.07 * grain + 0.04 * ripples * ripple_patches + 0.25 * pebbles
    return np.clip(128.0 * factor, 0, 255).astype(np.uint8)


def _fixed(points) -> np.ndarray:
    """Points as the 4-bit fixed point of OpenCV's drawing functions (sub-texel placement)."""
    return np.round(np.asarray(points, np.float64) * 16).astype(np.int32)
