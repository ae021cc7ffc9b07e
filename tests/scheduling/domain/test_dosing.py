"""Dose and preparation arithmetic: SCH-DOSE, SCH-PREP (HOLD-RULES.md §1). Exact: ints and Decimals only."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduling.domain.dosing import Preparation, dose_iu, preparation, reconstitution_expired


@pytest.mark.parametrize(
    ("weight", "expected"),
    [
        (Decimal("42.3"), 25_380_000),
        ("42.3", 25_380_000),
        (80, 48_000_000),
        (Decimal("80.0"), 48_000_000),
        (20, 12_000_000),
        (350, 210_000_000),
        (Decimal("70.25"), 42_150_000),
        (Decimal("70.0000001"), 42_000_000),  # below a whole IU: rounded half-up (0.06 IU)
    ],
)
def test_sch_dose_600k_iu_per_kg_exact(weight, expected):
    result = dose_iu(weight)
    assert result == expected
    assert type(result) is int


def test_sch_dose_site_iu_per_kg():
    assert dose_iu(80, iu_per_kg=720_000) == 57_600_000


@pytest.mark.parametrize("weight", [42.3, 80.0, True])
def test_sch_dose_refuses_floats_and_bools(weight):
    with pytest.raises(TypeError):
        dose_iu(weight)


@pytest.mark.parametrize("weight", [Decimal("19.99"), Decimal("350.01"), 0, -80, "abc", "", "NaN", Decimal("Infinity")])
def test_sch_dose_refuses_weights_outside_20_to_350_kg_or_not_numbers(weight):
    with pytest.raises(ValueError):
        dose_iu(weight)


@settings(max_examples=300, database=None)
@given(tenths=st.integers(200, 3500))
def test_sch_dose_is_exact_for_every_weight_to_0_1_kg(tenths):
    weight = Decimal(tenths) / 10
    assert dose_iu(weight) == tenths * 60_000
    assert dose_iu(str(weight)) == tenths * 60_000


def test_sch_prep_worked_example_80_kg():
    prep = preparation(dose_iu(80))
    assert prep == Preparation(
        dose_iu=48_000_000,
        vials=3,
        reconstitution_ml=Decimal("1.2"),
        concentration_iu_per_ml=18_000_000,
        volume_ml=Decimal("2.67"),
        diluent="D5W",
        diluent_ml=50,
        infusion_minutes=15,
        rate_ml_h=Decimal("210.7"),  # (50 + 2.67) mL over 15 min = 210.68 mL/h
        in_line_filter=False,
        max_hours_after_reconstitution=48,
    )


def test_sch_prep_42_3_kg():
    prep = preparation(dose_iu("42.3"))
    assert (prep.dose_iu, prep.volume_ml, prep.vials, prep.diluent_ml) == (25_380_000, Decimal("1.41"), 2, 25)
    assert prep.rate_ml_h == Decimal("105.6")  # (25 + 1.41) × 4 = 105.64


@pytest.mark.parametrize(
    ("dose", "diluent_ml"),
    [
        (25_400_000, 25),
        (25_400_001, 50),
        (60_000_000, 50),
        (60_000_001, 100),
        (12_000_000, 25),
        (210_000_000, 100),
    ],
)
def test_sch_prep_d5w_volume_boundaries(dose, diluent_ml):
    assert preparation(dose).diluent_ml == diluent_ml


@pytest.mark.parametrize("dose", [12_000_000, 25_400_001, 60_000_001, 210_000_000])
def test_sch_prep_fixed_50_ml_site_policy(dose):
    assert preparation(dose, diluent_policy="label-fixed-50").diluent_ml == 50


def test_sch_prep_unknown_diluent_policy():
    with pytest.raises(ValueError):
        preparation(48_000_000, diluent_policy="label-old")


@pytest.mark.parametrize(
    ("dose", "vials"),
    [
        (21_999_999, 1),
        (22_000_000, 1),
        (22_000_001, 2),
        (44_000_000, 2),
        (44_000_001, 3),
        (66_000_000, 3),
        (66_000_001, 4),
    ],
)
def test_sch_prep_vials_ceiling_at_22_miu_multiples(dose, vials):
    assert preparation(dose).vials == vials


def test_sch_prep_volume_rounds_half_up_to_2_decimals():
    assert preparation(9_090_000).volume_ml == Decimal("0.51")  # 0.505 mL exactly; half-even would give 0.50
    assert preparation(18_000_000).volume_ml == Decimal("1.00")


@pytest.mark.parametrize("dose", [48_000_000.0, Decimal(48_000_000), True])
def test_sch_prep_refuses_non_int_doses(dose):
    with pytest.raises(TypeError):
        preparation(dose)


@settings(max_examples=300, database=None)
@given(dose=st.integers(12_000_000, 210_000_000))
def test_sch_prep_properties(dose):
    prep = preparation(dose)
    assert (prep.vials - 1) * 22_000_000 < dose <= prep.vials * 22_000_000
    assert abs(prep.volume_ml * 18_000_000 - dose) <= Decimal("0.005") * 18_000_000
    assert prep.volume_ml.as_tuple().exponent == -2 and prep.rate_ml_h.as_tuple().exponent == -1
    assert prep.in_line_filter is False


RECONSTITUTED = datetime.fromisoformat("2027-03-12T10:00:00+00:00")


@pytest.mark.parametrize(
    ("age", "expired"),
    [
        (timedelta(0), False),
        (timedelta(hours=47, minutes=59), False),
        (timedelta(hours=48), False),  # exactly 48 h is still allowed
        (timedelta(hours=48, seconds=1), True),
        (timedelta(hours=72), True),
    ],
)
def test_sch_prep_48_hours_after_reconstitution(age, expired):
    assert reconstitution_expired(RECONSTITUTED, at=RECONSTITUTED + age) is expired


def test_sch_prep_48_hours_is_elapsed_time_across_dst():
    chicago = ZoneInfo("America/Chicago")
    reconstituted = datetime(2027, 3, 13, 12, 0, tzinfo=chicago)  # CST
    at_wall_48h = datetime(2027, 3, 15, 12, 0, tzinfo=chicago)  # CDT: only 47 h have elapsed
    assert reconstitution_expired(reconstituted, at=at_wall_48h + timedelta(minutes=30)) is False
    assert reconstitution_expired(reconstituted, at=at_wall_48h + timedelta(hours=1, seconds=1)) is True


def test_sch_prep_expiry_refuses_naive_datetimes():
    with pytest.raises(ValueError):
        reconstitution_expired(datetime(2027, 3, 12, 10, 0), at=RECONSTITUTED)
