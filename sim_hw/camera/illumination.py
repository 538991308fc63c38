"""Sun and heat over a scenario: what lights the EO image and warms the thermal one.

The sun's position comes from the usual low-precision almanac (declination and
equation of time as cosine series: about a degree, plenty for shadows). The
temperatures follow a plain diurnal curve for a Saharan surface: sand cools to
about 8 C before dawn and heats to about 52 C in the early afternoon, lagging
the sun; people, animals and vehicles stay within a few kelvin of their own
warmth, so at night they stand out warm on cool sand, and by day they are
cooler than the sand and the contrast is lower.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

LIGHTING = ("scene", "day", "night")
FORCED_SOLAR_HOUR = {"day": 13.0, "night": 1.0}

# Surface temperatures, deg C: (at night, in the afternoon sun).
BODY_C = {"person": (28.0, 37.0), "animal": (27.0, 38.0), "vehicle": (20.0, 46.0)}
ENGINE_C = 75.0  # a vehicle's bonnet over a running engine
SAND_C = (8.0, 52.0)
AIR_C = (12.0, 32.0)
SKY_BELOW_AIR_K = 35.0  # a clear desert sky is far colder than the air


@dataclass(frozen=True)
class Conditions:
    solar_hour: float  # local apparent solar time, h
    sun_elevation: float  # rad above the horizon
    sun_azimuth: float  # rad clockwise from north
    daylight: float  # 0 at night .. 1 in full day: the light on the EO camera
    heat: float  # 0 .. 1: the ground's solar heating, peaking mid-afternoon

    @property
    def sand_c(self) -> float:
        return _between(SAND_C, self.heat)

    @property
    def air_c(self) -> float:
        return _between(AIR_C, self.heat)

    @property
    def sky_c(self) -> float:
        return self.air_c - SKY_BELOW_AIR_K

    def body_c(self, target_class: str) -> float:
        return _between(BODY_C.get(target_class, AIR_C), self.heat)

    def outcrop_c(self) -> float:
        """Rock holds heat: warmer than the sand at night, cooler in the afternoon."""
        return self.sand_c + 5.0 - 11.0 * self.heat


def conditions(utc: float, lat: float, lon: float, lighting: str = "scene") -> Conditions:
    """The sun and the heat at (lat, lon) at `utc`; `lighting` "day" or "night" moves the
    clock to early afternoon or the small hours of the same date."""
    if lighting not in LIGHTING:
        raise ValueError(f"lighting {lighting!r} is not one of {LIGHTING}")
    if lighting != "scene":
        utc += (FORCED_SOLAR_HOUR[lighting] - solar_hour(utc, lon)) * 3600.0
    hour = solar_hour(utc, lon)
    elevation, azimuth = sun_position(utc, lat, lon)
    daylight = _smoothstep(math.degrees(elevation), -6.0, 10.0)  # civil twilight to full day
    return Conditions(hour, elevation, azimuth, daylight, _heating(hour))


def solar_hour(utc: float, lon: float) -> float:
    """Local apparent solar time in hours: UTC, the longitude, the equation of time."""
    return (utc / 3600.0 + lon / 15.0 + _equation_of_time_min(utc) / 60.0) % 24.0


def sun_position(utc: float, lat: float, lon: float) -> tuple[float, float]:
    """(elevation, azimuth clockwise from north) of the sun, rad."""
    day = time.gmtime(utc).tm_yday
    declination = math.radians(-23.44) * math.cos(2 * math.pi * (day + 10) / 365.0)
    hour_angle = math.radians(15.0 * (solar_hour(utc, lon) - 12.0))
    phi = math.radians(lat)
    sin_elevation = (math.sin(phi) * math.sin(declination)
                     + math.cos(phi) * math.cos(declination) * math.cos(hour_angle))  # fmt: skip
    elevation = math.asin(max(-1.0, min(1.0, sin_elevation)))
    azimuth = math.atan2(math.sin(hour_angle), math.cos(hour_angle) * math.sin(phi)
                         - math.tan(declination) * math.cos(phi)) + math.pi  # fmt: skip
    return elevation, azimuth % (2 * math.pi)


def _equation_of_time_min(utc: float) -> float:
    b = 2 * math.pi * (time.gmtime(utc).tm_yday - 81) / 364.0
    return 9.87 * math.sin(2 * b) - 7.53 * math.cos(b) - 1.5 * math.sin(b)


def _heating(hour: float) -> float:
    """0 from late evening to dawn, rising after sunrise to 1 at 14 h, then cooling."""
    if not 6.0 < hour < 22.0:
        return 0.0
    return math.sin(math.pi * (hour - 6.0) / 16.0) ** 1.5


def _between(pair: tuple[float, float], weight: float) -> float:
    return pair[0] + (pair[1] - pair[0]) * weight


def _smoothstep(x: float, low: float, high: float) -> float:
    t = min(max((x - low) / (high - low), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)
