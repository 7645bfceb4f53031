"""The EN 13201 table and the decision rule: fixed cases, then properties over any input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinergia.apps.lighting.classes import (
    LUMINANCE,
    TRAFFIC_BANDS,
    MClass,
    band_table,
    class_for_traffic,
    class_provided,
    level_for_class,
    required_class,
)
from sinergia.apps.lighting.policy import PolicyLimits, Reason, decide

# -- the table ----------------------------------------------------------------------------------


def test_luminances_are_those_of_en_13201_2() -> None:
    assert [LUMINANCE[c] for c in MClass] == [2.0, 1.5, 1.0, 0.75, 0.5, 0.3]
    assert MClass.M4.luminance == 0.75


@pytest.mark.parametrize(("vph", "expected"), [
    (0, MClass.M6), (119.9, MClass.M6), (120, MClass.M5), (299, MClass.M5), (300, MClass.M4),
    (599, MClass.M4), (600, MClass.M3), (999, MClass.M3), (1000, MClass.M2),
    (1499, MClass.M2), (1500, MClass.M1), (10_000, MClass.M1),
])
def test_traffic_bands(vph: float, expected: MClass) -> None:
    assert class_for_traffic(vph) is expected


def test_bands_are_ordered_and_cover_every_class() -> None:
    minimums = [band.min_vph for band in TRAFFIC_BANDS]
    assert minimums == sorted(minimums, reverse=True) and minimums[-1] == 0
    assert [band.needs for band in TRAFFIC_BANDS] == list(MClass)
    rows = band_table()
    assert rows[0] == {"class": "M1", "minVehiclesPerHour": 1500.0, "maxVehiclesPerHour": None,
                       "luminance": 2.0}
    assert rows[-1]["maxVehiclesPerHour"] == 120.0


def test_required_class_is_capped_at_the_design_class() -> None:
    assert required_class(5000, MClass.M3) is MClass.M3   # the lamps cannot give more
    assert required_class(50, MClass.M3) is MClass.M6


@pytest.mark.parametrize(("lighting_class", "design", "level"), [
    (MClass.M3, MClass.M3, 1.0), (MClass.M4, MClass.M3, 0.75), (MClass.M6, MClass.M3, 0.3),
    (MClass.M3, MClass.M2, 2 / 3), (MClass.M1, MClass.M3, 1.0),
])
def test_level_is_the_luminance_ratio(lighting_class: MClass, design: MClass,
                                      level: float) -> None:
    assert level_for_class(lighting_class, design) == pytest.approx(level)


def test_class_provided_by_a_level() -> None:
    assert class_provided(0.75, MClass.M3) is MClass.M4
    assert class_provided(0.74, MClass.M3) is MClass.M5
    assert class_provided(1.0, MClass.M2) is MClass.M2
    assert class_provided(0.1, MClass.M3) is None


def test_parse() -> None:
    assert MClass.parse(" m2 ") is MClass.M2
    with pytest.raises(ValueError, match="M1"):
        MClass.parse("P3")


# -- fixed decisions ----------------------------------------------------------------------------


def test_quiet_night_dims_to_the_floor() -> None:
    decision = decide(40, MClass.M3)
    assert decision.chosen_class is MClass.M6 and decision.level == pytest.approx(0.3)
    assert decision.reason is Reason.TRAFFIC and decision.required_class is MClass.M6


def test_the_floor_holds_when_the_class_would_allow_less() -> None:
    decision = decide(40, MClass.M2, limits=PolicyLimits(safe_minimum=0.3))
    assert decision.chosen_class is MClass.M6           # 0.3/1.5 = 20 % would do…
    assert decision.level == pytest.approx(0.3)         # …but the floor is 30 %
    assert decision.provided_class is MClass.M6


def test_no_data_means_full_design_light() -> None:
    decision = decide(None, MClass.M4)
    assert decision.level == 1.0 and decision.reason is Reason.NO_TRAFFIC_DATA
    assert decide(float("nan"), MClass.M4).reason is Reason.NO_TRAFFIC_DATA
    assert decide(-5, MClass.M4).level == 1.0


def test_brightens_at_once_but_dims_with_hysteresis() -> None:
    limits = PolicyLimits(hysteresis=0.15)
    # at M3 (600-1000 veh/h) on an M2 road; traffic falls just under the M3 band
    assert decide(590, MClass.M2, current=MClass.M3, limits=limits).chosen_class is MClass.M3
    # clearly under it (590 * 1.15 < 600 is false; 500 * 1.15 = 575 < 600): dims
    assert decide(500, MClass.M2, current=MClass.M3, limits=limits).chosen_class is MClass.M4
    # from M5, a rise into the M4 band brightens immediately
    assert decide(301, MClass.M2, current=MClass.M5, limits=limits).chosen_class is MClass.M4


def test_override_wins_within_the_floor() -> None:
    assert decide(5000, MClass.M2, override=0.5).level == 0.5
    assert decide(0, MClass.M2, override=1.0).level == 1.0
    low = decide(0, MClass.M2, override=0.0, limits=PolicyLimits(safe_minimum=0.3))
    assert low.level == 0.3 and low.reason is Reason.OVERRIDE and low.chosen_class is None


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="safe_minimum"):
        PolicyLimits(safe_minimum=1.5)
    with pytest.raises(ValueError, match="hysteresis"):
        PolicyLimits(hysteresis=-0.1)


# -- properties ---------------------------------------------------------------------------------

traffic = st.one_of(st.none(), st.floats(min_value=0, max_value=5000, allow_nan=False))
classes = st.sampled_from(list(MClass))
currents = st.one_of(st.none(), classes)
levels = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
limits_strategy = st.builds(PolicyLimits, safe_minimum=levels,
                            hysteresis=st.floats(min_value=0, max_value=1))


@given(traffic, classes, currents, st.one_of(st.none(), levels), limits_strategy)
def test_never_below_the_safe_minimum(vph: float | None, design: MClass,
                                      current: MClass | None, override: float | None,
                                      limits: PolicyLimits) -> None:
    decision = decide(vph, design, current=current, override=override, limits=limits)
    assert limits.safe_minimum <= decision.level <= 1.0


@given(traffic, classes, currents, levels, limits_strategy)
def test_an_override_always_wins(vph: float | None, design: MClass, current: MClass | None,
                                 override: float, limits: PolicyLimits) -> None:
    decision = decide(vph, design, current=current, override=override, limits=limits)
    assert decision.reason is Reason.OVERRIDE
    assert decision.level == max(limits.safe_minimum, override)


@given(st.floats(min_value=0, max_value=5000), classes, currents, limits_strategy)
def test_never_below_the_class_the_traffic_requires(vph: float, design: MClass,
                                                    current: MClass | None,
                                                    limits: PolicyLimits) -> None:
    decision = decide(vph, design, current=current, limits=limits)
    required = required_class(vph, design)
    assert decision.chosen_class is not None and decision.chosen_class <= required
    # and the level really gives that luminance
    assert decision.level * design.luminance >= required.luminance - 1e-9


@given(st.floats(min_value=0, max_value=5000), st.floats(min_value=0, max_value=5000),
       classes, currents, limits_strategy)
def test_more_traffic_never_means_less_light(a: float, b: float, design: MClass,
                                             current: MClass | None,
                                             limits: PolicyLimits) -> None:
    low, high = sorted((a, b))
    assert (decide(low, design, current=current, limits=limits).level
            <= decide(high, design, current=current, limits=limits).level)


@given(st.floats(min_value=0, max_value=5000), classes, limits_strategy)
def test_the_same_traffic_gives_a_stable_decision(vph: float, design: MClass,
                                                  limits: PolicyLimits) -> None:
    first = decide(vph, design, limits=limits)
    again = decide(vph, design, current=first.chosen_class, limits=limits)
    assert again.chosen_class == first.chosen_class and again.level == first.level
