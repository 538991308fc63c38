"""GOSPA against a brute-force enumeration written from the definition."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.gospa import gospa

pytestmark = pytest.mark.unit


def brute_force(truth, estimates, c, p):
    """Minimum over every partial one-to-one matching, from the definition."""
    n, m = len(truth), len(estimates)
    best = np.inf
    for k in range(min(n, m) + 1):
        for chosen_truth in itertools.combinations(range(n), k):
            for chosen_est in itertools.permutations(range(m), k):
                value = sum(
                    min(np.linalg.norm(truth[a] - estimates[b]), c) ** p
                    for a, b in zip(chosen_truth, chosen_est, strict=True)
                )
                value += c**p / 2 * ((n - k) + (m - k))
                best = min(best, value)
    return best ** (1 / p)


points = st.lists(
    st.tuples(st.floats(-100, 100), st.floats(-100, 100)), min_size=0, max_size=5
)


@settings(max_examples=200, deadline=None)
@given(truth=points, estimates=points, p=st.sampled_from([1.0, 2.0]),
       c=st.floats(1.0, 150.0))  # fmt: skip
def test_equals_brute_force(truth, estimates, p, c):
    truth = np.array(truth).reshape(-1, 2)
    estimates = np.array(estimates).reshape(-1, 2)
    result = gospa(truth, estimates, c=c, p=p)
    assert result.total == pytest.approx(brute_force(truth, estimates, c, p), rel=1e-9, abs=1e-9)
    parts = result.localisation + result.missed + result.false
    assert parts ** (1 / p) == pytest.approx(result.total, rel=1e-12, abs=1e-12)


def test_hand_worked_cases():
    assert gospa(np.empty((0, 2)), np.empty((0, 2)), c=10).total == 0.0
    two = np.array([[0.0, 0.0], [100.0, 0.0]])
    assert gospa(two, [], c=10).missed == 10.0
    assert gospa([], two, c=10).false == 10.0
    near = gospa([[0.0, 0.0]], [[3.0, 4.0]], c=10)
    assert (near.localisation, near.missed, near.false) == (5.0, 0.0, 0.0)
    far = gospa([[0.0, 0.0]], [[30.0, 40.0]], c=10)
    assert (far.localisation, far.missed, far.false, far.total) == (0.0, 5.0, 5.0, 10.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"truth": [[0, 0, 0]], "estimates": [[0, 0]], "c": 1}, "shape"),
        ({"truth": [[np.nan, 0]], "estimates": [[0, 0]], "c": 1}, "NaN"),
        ({"truth": [[0, 0]], "estimates": [[0, 0]], "c": 0}, "cut-off"),
        ({"truth": [[0, 0]], "estimates": [[0, 0]], "c": 1, "p": 0.5}, "p must"),
        ({"truth": [[0, 0]], "estimates": [[0, 0]], "c": 1, "alpha": 1}, "alpha"),
    ],
)
def test_bad_input_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gospa(**kwargs)
