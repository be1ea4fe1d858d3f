from __future__ import annotations

from pipeline.errors import ConfigError, FatalError, RetryableError, fatal_in


def test_the_first_fatal_error_is_found_however_deep_the_task_groups_nest_it() -> None:
    fatal = FatalError("the broker did not acknowledge")
    inner = ExceptionGroup("pool", [RetryableError("x"), fatal])
    outer = ExceptionGroup("service", [ValueError("y"), inner, ConfigError("later")])
    assert fatal_in(outer) is fatal
    assert fatal_in(ExceptionGroup("none", [ValueError("y")])) is None
