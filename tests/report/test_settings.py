from dataclasses import fields

import pytest

from heldout.errors import ConfigError
from heldout.report.settings import ReportSettings


def test_settings_defaults_are_plain_types():
    settings = ReportSettings()
    for item in fields(settings):
        assert type(getattr(settings, item.name)) in (int, float, bool), item.name


def test_settings_docstring_documents_every_field():
    for item in fields(ReportSettings):
        assert f"{item.name}:" in ReportSettings.__doc__, item.name


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("confidence_level", 1.0, "between 0 and 1"),
        ("significance_level", 0.0, "between 0 and 1"),
        ("overfit_gap", -0.1, "a fraction between 0 and 1"),
        ("ece_limit", 1.5, "a fraction between 0 and 1"),
        ("bootstrap_resamples", 0, "at least 1"),
        ("min_val_images", -1, "at least 0"),
    ],
)
def test_settings_reject_out_of_range(name, value, message):
    with pytest.raises(ConfigError, match=f"Expected `report.{name}` to be .*{message}.*but got {value}"):
        ReportSettings(**{name: value})


@pytest.mark.parametrize(("name", "value"), [("seed", 1.5), ("overfit_gap", "0.1"), ("gallery_size", True)])
def test_settings_reject_wrong_type(name, value):
    with pytest.raises(TypeError, match=f"Expected `report.{name}` to be an? (int|float)"):
        ReportSettings(**{name: value})
