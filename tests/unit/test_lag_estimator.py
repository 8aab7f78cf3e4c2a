"""The lag-in-seconds estimator, driven by explicit sample times (no clock, no broker)."""
import pytest

from consumers.lag.estimator import EndOffsetTable


def table(*points):
    t = EndOffsetTable(max_points=50)
    for offset, at in points:
        t.add(offset, at)
    return t


def test_caught_up_is_zero_even_on_an_old_idle_topic():
    t = table((100, 0.0), (100, 1000.0), (100, 5000.0))
    assert t.estimate(100, now=9999.0).seconds == 0.0
    assert t.estimate(100, now=99999.0).seconds == 0.0  # does not grow


def test_interpolates_between_bracketing_samples():
    # end went 0 -> 100 between t=10 and t=20: record 49 (end reaches 50) was appended at t=15.
    t = table((0, 10.0), (100, 20.0))
    est = t.estimate(49, now=30.0)
    assert est.source == "interpolated"
    assert est.seconds == pytest.approx(15.0)


def test_stopped_consumer_lag_grows_at_wall_clock_rate():
    t = table((0, 0.0), (10, 10.0), (20, 20.0))
    first = t.estimate(9, now=20.0).seconds
    t.add(30, 30.0)
    assert t.estimate(9, now=30.0).seconds - first == pytest.approx(10.0)


def test_flat_stretch_keeps_its_last_point_for_interpolation():
    # idle at 10 from t=0 to t=50, then 10 more records by t=60: record 14 appended at ~t=55, not ~t=30.
    t = table((10, 0.0), (10, 10.0), (10, 20.0), (10, 50.0), (20, 60.0))
    assert [p.offset for p in t.points] == [10, 10, 20]  # flat stretch compressed to first and last point
    assert t.estimate(14, now=60.0).seconds == pytest.approx(5.0)


def test_committed_older_than_table_needs_lookup_with_lower_bound():
    t = table((50, 100.0), (60, 110.0))
    est = t.estimate(10, now=130.0)
    assert est.source == "needs-lookup"
    assert est.seconds == pytest.approx(30.0)  # at least as old as our oldest sample


def test_table_is_bounded_and_resets_when_the_log_goes_backwards():
    t = EndOffsetTable(max_points=5)
    for i in range(20):
        t.add(i, float(i))
    assert len(t.points) == 5
    t.add(3, 21.0)  # topic re-created
    assert [p.offset for p in t.points] == [3]


def test_committed_beyond_end_is_caught_up():
    assert table((5, 0.0)).estimate(7, now=10.0).seconds == 0.0
