"""Events out, the parts without a database: subscription patterns, backoff with jitter, and signatures that the
`standardwebhooks` reference library verifies."""

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from app.events.delivery import Policy, body_text, signed_headers
from app.events.outbox import EVENT_TYPES, matches
from app.events.service import new_secret


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (["*"], "cob.completed", True),
        (["loan.*"], "loan.payment_received", True),
        (["loan.*"], "cob.completed", False),
        (["cob.*"], "cob.completed", True),
        (["loan.closed"], "loan.closed", True),
        (["loan.closed"], "loan.overpaid", False),
        (["loan.payment_received", "cob.completed"], "cob.completed", True),
    ],
)
def test_subscription_patterns(patterns: list[str], event_type: str, expected: bool) -> None:
    assert matches(patterns, event_type) is expected


def test_every_contract_event_type_is_known() -> None:
    contract = {"submitted", "approved", "rejected", "withdrawn", "disbursed", "payment_received",
                "transaction_reversed", "charge_added", "waived", "modified", "late_fee_charged", "delinquent",
                "closed", "overpaid", "written_off"}
    assert {f"loan.{t}" for t in contract} | {"cob.completed"} <= set(EVENT_TYPES)


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = Policy(5.0, 3600.0, timedelta(hours=24), timedelta(seconds=60), 10.0, 8)
    for attempts, full in ((1, 5.0), (2, 10.0), (3, 20.0), (10, 2560.0), (20, 3600.0)):
        delays = [policy.backoff(attempts).total_seconds() for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays), (attempts, min(delays), max(delays))
        assert len(set(delays)) > 1, "jittered"


def test_signatures_verify_with_the_reference_library_and_not_when_tampered() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    body = body_text({"type": "loan.closed", "timestamp": "2026-12-06T10:00:00Z", "data": {"sequence": 3}})
    assert body == '{"data":{"sequence":3},"timestamp":"2026-12-06T10:00:00Z","type":"loan.closed"}'
    headers = signed_headers(secret, "msg_1", body, datetime.now(UTC))
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers)["data"]["sequence"] == 3
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("3", "4"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
