"""The report's charts show real rates and a backlog that ends when the
queue drained (issue 26): bins sized to the run, the backlog falling to
zero at the last finished job rather than held until someone looked."""

from __future__ import annotations

import datetime as dt

from specfleet.report import MAX_BINS, backlog_plot, backlog_points, bin_seconds, throughput_plot

T0 = dt.datetime(2026, 12, 6, 10, 0, 0)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_a_two_minute_run_is_a_curve_and_a_month_is_not_a_million_bins() -> None:
    for span_s in (0, 40, 120, 3600, 86400, 30 * 86400):
        b = bin_seconds(T0, at(span_s))
        assert span_s / b <= MAX_BINS
    assert 120 / bin_seconds(T0, at(120)) >= 12  # two minutes: a dozen points or more, not one or two
    assert bin_seconds(T0, at(3600)) == 60


def test_the_backlog_ends_at_the_last_finished_job() -> None:
    samples = [{"sampled_at": at(0), "visible": 8, "in_flight": 2, "dlq": 0},
               {"sampled_at": at(60), "visible": 3, "in_flight": 1, "dlq": 0},
               {"sampled_at": at(600), "visible": 0, "in_flight": 0, "dlq": 0}]  # looked again 9 min later
    # the last job finished at 95 s: the queue was empty from then on
    assert backlog_points(samples, at(95)) == [(at(0), 10), (at(60), 4), (at(95), 0), (at(600), 0)]
    # a job finishing after the empty sample (another run) does not move the drain
    assert backlog_points(samples, at(700)) == [(at(0), 10), (at(60), 4), (at(600), 0)]
    assert backlog_points(samples, None) == [(at(0), 10), (at(60), 4), (at(600), 0)]


def test_the_charts_draw() -> None:
    rows = [{"pipeline": p, "t": at(5 * i), "jobs": i % 3} for p in ("hydrophone", "spectrogram") for i in range(20)]
    assert throughput_plot(rows, 5).startswith("data:image/png;base64,")
    samples = [{"pipeline": "hydrophone", "sampled_at": at(s), "visible": v, "in_flight": 0, "dlq": 0}
               for s, v in ((0, 5), (30, 2), (300, 0))]
    assert backlog_plot(samples, {"hydrophone": at(45)}).startswith("data:image/png;base64,")
