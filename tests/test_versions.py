"""The bundled EKS version calendar and what it says on a given day."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from components.facts.versions import calendar, check_version


def test_calendar_states_its_source_and_rates() -> None:
    cal = calendar()
    assert "endoflife.date" in cal.source
    # EKS pricing: $0.10 per cluster-hour in standard support, $0.60 in extended support
    assert (cal.standard_usd_per_hour, cal.extended_usd_per_hour) == (0.10, 0.60)


def test_calendar_dates_are_consistent() -> None:
    assert {"1.33", "1.34", "1.35"} <= set(calendar().versions)  # the versions shared/FACTS.md dates
    for v in calendar().versions.values():
        assert v.released < v.end_of_standard_support < v.end_of_extended_support, v.version
        # 14 months of standard support, then 12 of extended (EKS User Guide, kubernetes-versions)
        assert 13 * 30 <= (v.end_of_standard_support - v.released).days <= 15 * 31, v.version
        assert 360 <= (v.end_of_extended_support - v.end_of_standard_support).days <= 370, v.version


@pytest.mark.parametrize("version", sorted(calendar().versions))
def test_each_version_through_its_life(version: str) -> None:
    info = calendar().versions[version]
    assert check_version(version, info.end_of_standard_support) == check_version(version, info.released)
    assert check_version(version, info.released).error is None
    extended = check_version(version, info.end_of_standard_support + timedelta(days=1))
    assert extended.extended_support and extended.error is None and extended.warning
    assert f"until {info.end_of_extended_support}" in extended.warning
    gone = check_version(version, info.end_of_extended_support + timedelta(days=1))
    assert gone.error and f"left EKS extended support on {info.end_of_extended_support}" in gone.error


def test_facts_dates() -> None:
    # shared/FACTS.md: 1.33 standard support ended 2026-07-29; 1.34 ends 2026-12-02; 1.35 ends 2027-03-27.
    assert check_version("1.33", date(2026, 7, 30)).extended_support
    assert not check_version("1.34", date(2026, 12, 2)).extended_support
    assert check_version("1.34", date(2026, 12, 3)).extended_support
    assert not check_version("1.35", date(2027, 3, 27)).extended_support


def test_older_than_calendar_is_an_error_and_newer_a_warning() -> None:
    assert check_version("1.20", date(2026, 12, 1)).error
    newer = check_version("1.40", date(2026, 12, 1))
    assert newer.error is None and newer.warning and "newer than the bundled EKS calendar" in newer.warning
