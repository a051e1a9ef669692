"""The bundled EKS version calendar and what it says on a given day."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from eks_gpu.facts.versions import calendar, check_version


def test_calendar_states_its_source_and_rates() -> None:
    cal = calendar()
    assert "endoflife.date" in cal.source
    # EKS pricing: $0.10 per cluster-hour in standard support, $0.60 in extended support
    assert (cal.standard_usd_per_hour, cal.extended_usd_per_hour) == (0.10, 0.60)


def test_calendar_dates_are_consistent() -> None:
    assert {"1.33", "1.34", "1.35", "1.36"} <= set(calendar().versions)  # FACTS.md's, and 1.36
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


def test_kubernetes_1_36() -> None:
    # endoflife.date/amazon-eks: EKS 1.36 released 2026-06-02, standard support to 2027-08-02,
    # extended to 2028-08-02 (the calendar's "notes" say where each date comes from)
    assert calendar().versions["1.36"].released == date(2026, 6, 2)
    assert not check_version("1.36", date(2027, 8, 2)).extended_support
    assert check_version("1.36", date(2027, 8, 3)).extended_support
    assert check_version("1.36", date(2028, 8, 3)).error


def test_older_than_calendar_is_an_error_and_newer_a_warning_that_says_what_is_assumed() -> None:
    cal = calendar()
    assert check_version("1.20", cal.updated).error
    newer = check_version(f"1.{int(cal.newest().split('.')[1]) + 1}", cal.updated)
    assert newer.error is None and not newer.extended_support and newer.warning
    assert f"newer than the bundled EKS calendar (updated {cal.updated}" in newer.warning
    assert f"standard support (control plane at ${cal.standard_usd_per_hour:.2f}/h)" in newer.warning
