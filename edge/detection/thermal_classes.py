"""What a warm blob is, from its size on the ground: person, animal, vehicle, or unknown.

Each kind of target is a `Body`: the warm part of it a thermal camera may see,
from its least (a person's head and shoulders, an animal's trunk) to its
whole outline. `classify` compares a blob's two sides in metres with each
body's apparent sides at the camera's depression angle, at every heading,
widened by the camera's blur. Away from the image's centre column an upright
body leans in the image (verticals converge on the nadir's vanishing point),
so part of its height shows across: `lean` is that angle at the blob.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class SizeRules(Protocol):
    """The detector's settings that `classify` reads."""

    blur_px: float
    size_tolerance: float
    bodies: tuple[Body, ...]


@dataclass(frozen=True)
class Body:
    """A kind of target, for the class guess: the warm part of it a camera may see, in metres.

    At half contrast a blob is at most the target's outline and at least its
    warmest part: a person's head and shoulders, an animal's trunk.
    """

    name: str  # the Detection's target_class
    outline: tuple[float, float, float]  # m: length along its heading, width, height
    least: tuple[float, float, float]  # m: the smallest warm part, likewise

    def apparent_range(self, depression: float,
                       lean: float = 0.0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """(smallest, largest): (len(HEADINGS), 2) apparent (across, up the image) m."""
        return (_apparent(self.least, depression, lean), _apparent(self.outline, depression, lean))


def _apparent(size: tuple[float, float, float], depression: float, lean: float) -> np.ndarray:
    """Apparent (across, up the image) m of an upright ellipse-based solid at each heading
    (from the image's across direction): the footprint foreshortened, the height added
    along the image's vertical at that point, `lean` rad from the image's columns."""
    length, width, height = size
    c, s = np.cos(HEADINGS), np.sin(HEADINGS)
    upright = height * math.cos(depression)
    across = np.hypot(length * c, width * s) + upright * abs(math.sin(lean))
    depth = np.hypot(length * s, width * c)
    return np.column_stack([across, depth * math.sin(depression) + upright * math.cos(lean)])


HEADINGS = np.linspace(0.0, math.pi / 2.0, 10)  # enough: the sizes are symmetric in heading
PERSON_BODY = Body("person", outline=(0.6, 0.4, 1.7), least=(0.2, 0.2, 0.2))
ANIMAL_BODY = Body("animal", outline=(3.0, 0.8, 2.0), least=(2.2, 0.7, 1.6))  # a camel
# A vehicle by its size is a whole body warm. A running one whose engine alone stands
# out is no bigger than an animal: the node tells it by its speed instead.
VEHICLE_BODY = Body("vehicle", outline=(4.6, 1.8, 1.7), least=(4.6, 1.8, 1.7))


def classify(across_m: float, along_m: float, gsd: float, depression: float,
             settings: SizeRules, lean: float = 0.0) -> str:  # fmt: skip
    """The one kind of target whose apparent size, blurred, fits a blob's; else "unknown".

    A kind fits when at some heading both of the blob's sides (m, across the
    line of sight and up the image) lie between the kind's least and largest
    apparent sides, each widened by the blur, give or take the tolerance and a
    pixel. Where more than one kind fits, or a fitting kind is smaller than the
    blur (the camera does not resolve it: a person, a dog, a vehicle's hot
    bonnet and a warm stone all make the same blob), the guess is "unknown"
    rather than a coin toss.
    """
    blur = settings.blur_px * gsd
    measured = np.array([across_m, along_m])
    fitting = []
    for body in settings.bodies:
        least, largest = body.apparent_range(depression, lean)
        low = np.hypot(least, blur) * (1.0 - settings.size_tolerance) - gsd
        high = np.hypot(largest, blur) * (1.0 + settings.size_tolerance) + gsd
        if np.any(np.all((low <= measured) & (measured <= high), axis=1)):
            if largest.max() < blur:
                return "unknown"
            fitting.append(body.name)
    return fitting[0] if len(fitting) == 1 else "unknown"
