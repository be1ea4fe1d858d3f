from __future__ import annotations

import io
import logging

import orjson
import structlog

from pipeline.logs import configure_logging, mask_text


def test_masks_emails_and_cookie_keys_wherever_they_appear() -> None:
    assert mask_text("lead ada@example.com and bob.smith@corp.example") == "lead a***@example.com and b***@corp.example"
    assert mask_text("key cookie:id:561-HYG-937&token:_mch|ws:EMEA") == "key cookie:***|ws:EMEA"
    assert mask_text("nothing personal") == "nothing personal"


def test_secrets_are_redacted_and_identity_fields_masked() -> None:
    buffer = io.StringIO()
    configure_logging("info", stream=buffer)
    try:
        structlog.get_logger().info(
            "probe", secret_key="s3cr3t", signature="abc", email="ada@example.com", cookie="id:123456789&token:x", n=1
        )
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    line = orjson.loads(buffer.getvalue())
    assert line["secret_key"] == line["signature"] == "[redacted]"
    assert line["email"] == "a***@example.com"
    assert line["cookie"] == "id:1***"
    assert line["n"] == 1


def test_exception_text_and_nested_values_are_masked_too() -> None:
    buffer = io.StringIO()
    configure_logging("info", stream=buffer)
    try:
        try:
            raise ValueError("lead ada@example.com refused, cookie:id:561-HYG-937&token:_mch")  # noqa: TRY301
        except ValueError:
            structlog.get_logger().exception(
                "probe",
                lead={"Email": "bob@example.com", "tags": ["carol@example.com"], "auth": {"password": "pw"}},
                keys=("email:dan@example.com",),
            )
        logging.getLogger("aiokafka").error("could not reach erin@example.com")
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    text = buffer.getvalue()
    for secret in ("ada@", "bob@", "carol@", "dan@", "erin@", "561-HYG", '"pw"'):
        assert secret not in text
    probe, stdlib = (orjson.loads(line) for line in text.splitlines())
    assert "a***@example.com" in probe["exception"]
    assert probe["lead"] == {
        "Email": "b***@example.com",
        "tags": ["c***@example.com"],
        "auth": {"password": "[redacted]"},
    }
    assert probe["keys"] == ["email:d***@example.com"]
    assert stdlib["event"] == "could not reach e***@example.com"


def test_aiokafka_conditions_that_resolve_themselves_are_warnings_not_errors() -> None:
    import io  # noqa: PLC0415
    import logging  # noqa: PLC0415

    import orjson  # noqa: PLC0415

    from pipeline.logs import configure_logging  # noqa: PLC0415

    out = io.StringIO()
    configure_logging("info", stream=out)
    aiokafka = logging.getLogger("aiokafka.consumer.group_coordinator")
    aiokafka.error("Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError")
    aiokafka.error("Unable connect to node: SaslAuthenticationFailed")
    levels = [orjson.loads(line)["level"] for line in out.getvalue().splitlines()]
    assert levels == ["warning", "error"]
