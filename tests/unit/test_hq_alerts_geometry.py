"""The alerts' geometry kernels against references computed another way: whether a step
crosses a segment by orientation tests (on which side of each line the other segment's
ends lie), where it crosses by solving the two lines' equations, and whether a point is in
a zone by its winding number."""

import numpy as np
import pytest

from hq.alerts.geometry import NOT_CROSSING, border_crossings, crossing_fraction, inside

pytestmark = pytest.mark.unit


def orientation(a, b, c) -> float:
    """> 0 when a, b, c turn left, < 0 when they turn right."""
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def properly_cross(a, b, p, q) -> bool:
    return (orientation(a, b, p) * orientation(a, b, q) < 0
            and orientation(p, q, a) * orientation(p, q, b) < 0)  # fmt: skip


def winding_number(point, polygon) -> float:
    """Turns the polygon's boundary makes around `point`: the sum of the angles its edges
    subtend."""
    vectors = polygon - point
    angles = np.arctan2(vectors[:, 1], vectors[:, 0])
    steps = np.diff(np.append(angles, angles[0]))
    return float(np.sum((steps + np.pi) % (2 * np.pi) - np.pi) / (2 * np.pi))


def test_crossings_are_the_orientation_tests_and_cross_where_the_lines_meet():
    rng = np.random.default_rng(11)
    a, b, p, q = rng.uniform(-10, 10, (4, 5000, 2))
    crossed = 0
    for k in range(len(a)):
        fraction = crossing_fraction(*a[k], *b[k], *p[k], *q[k])
        expected = properly_cross(a[k], b[k], p[k], q[k])
        assert (fraction != NOT_CROSSING) == expected
        if expected:
            crossed += 1
            # a + u (b - a) = p + v (q - p)
            u, _ = np.linalg.solve(np.column_stack([b[k] - a[k], p[k] - q[k]]), p[k] - a[k])
            assert fraction == pytest.approx(u, rel=1e-9, abs=1e-12)
    assert 0.1 < crossed / len(a) < 0.9


def test_a_step_onto_the_border_has_not_crossed_yet_one_off_it_has_and_parallels_never_do():
    p, q = (0.0, -1.0), (0.0, 1.0)
    assert crossing_fraction(-1.0, 0.0, 0.0, 0.0, *p, *q) == NOT_CROSSING  # ends on it
    assert crossing_fraction(0.0, 0.0, 1.0, 0.0, *p, *q) == 0.0  # starts on it
    assert crossing_fraction(-1.0, 0.0, 1.0, 0.0, *p, *q) == 0.5
    assert crossing_fraction(-1.0, -1.0, -1.0, 1.0, *p, *q) == NOT_CROSSING  # parallel
    border = np.array([[0.0, -1.0], [0.0, 1.0], [2.0, 1.0], [2.0, -1.0]])
    fractions = border_crossings(np.array([-1.0, 0.0]), np.array([3.0, 0.0]), border)
    assert fractions.tolist() == [0.25, NOT_CROSSING, 0.75]


@pytest.mark.parametrize("polygon", [
    [[0, 0], [10, 0], [10, 10], [5, 3], [0, 10]],  # concave
    [[0, 4], [3, 3], [4, 0], [5, 3], [8, 4], [5, 5], [4, 8], [3, 5]],  # a star
    [[0, 0], [0, 10], [10, 10], [10, 0]],  # clockwise
])  # fmt: skip
def test_inside_is_a_nonzero_winding_number(polygon):
    polygon = np.array(polygon, float)
    rng = np.random.default_rng(5)
    points = rng.uniform(polygon.min(axis=0) - 1, polygon.max(axis=0) + 1, (4000, 2))
    found = [inside(x, y, polygon) for x, y in points]
    expected = [abs(winding_number(point, polygon)) > 0.5 for point in points]
    assert found == expected
    assert 0.1 < np.mean(expected) < 0.9
