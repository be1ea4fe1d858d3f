from __future__ import annotations

import pytest

from pipeline.sim.settings import FaultSpec, SimConfigError, SimSettings, apply_patch


def test_defaults_are_limits_off_auth_on_no_faults() -> None:
    shown = SimSettings().public()
    assert shown["auth"] is True
    assert shown["faults"] == []
    assert shown["lead_fields"] is None
    for key in ("calls_per_20s", "max_concurrency", "daily_quota", "max_leads_per_call", "max_mobjects_per_call"):
        assert shown[key] is None
    assert "secret_key" not in shown


def test_a_patch_changes_only_what_it_names() -> None:
    settings = apply_patch(SimSettings(calls_per_20s=100), {"max_concurrency": 10, "lead_fields": ["FirstName"]})
    assert (settings.calls_per_20s, settings.max_concurrency, settings.lead_fields) == (100, 10, ("FirstName",))
    assert apply_patch(settings, {"calls_per_20s": None}).calls_per_20s is None


def test_faults_are_parsed() -> None:
    settings = apply_patch(
        SimSettings(),
        {
            "faults": [
                {"kind": "http_500", "rate": 0.1},
                {"kind": "fault", "code": "20023", "rate": 0.05, "operation": "syncLead"},
            ]
        },
    )
    assert settings.faults == (
        FaultSpec("http_500", 0.1),
        FaultSpec("fault", 0.05, code="20023", operation="syncLead"),
    )


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"calls_per_20s": 0}, "calls_per_20s"),
        ({"max_concurrency": "10"}, "max_concurrency"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"auth": "yes"}, "auth"),
        ({"lead_fields": "FirstName"}, "lead_fields"),
        ({"faults": [{"kind": "explode", "rate": 0.1}]}, "faults.kind"),
        ({"faults": [{"kind": "fault", "rate": 0.1}]}, "faults.code"),
        ({"faults": [{"kind": "reset", "rate": 2}]}, "faults.rate"),
        ({"faults": [{"kind": "reset", "rate": 0.1, "operation": "getLead"}]}, "faults.operation"),
        ({"faults": [{"kind": "reset", "rate": 0.1, "when": "now"}]}, "faults: unknown field 'when'"),
        ({"workspaces": {"EMEA": "E"}}, "workspaces"),
        ({"workspaces": {"Default": "Default", "default": "P"}}, "differ only by case"),
        ({"assignment_rules": [{"field": "Country", "value": "France"}]}, "assignment_rules"),
        ({"assignment_rules": {"field": "Country"}}, "assignment_rules"),
        ({"program_channels": "Webinar"}, "program_channels"),
        ({"colour": "blue"}, "unknown field 'colour'"),
    ],
)
def test_a_bad_patch_names_its_field(patch: dict[str, object], field: str) -> None:
    with pytest.raises(SimConfigError, match=field):
        apply_patch(SimSettings(), patch)
