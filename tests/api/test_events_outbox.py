"""The transactional outbox: every loan event lands in `outbox_events` in the transaction of the change, with a
gap-free per-loan sequence; a dry run, a refused request or an idempotent replay adds nothing."""

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from app.database import Database
from app.events.models import OutboxEvent
from app.loans.models import Loan
from tests.api.helpers_lending import LOANS, act, active_loan, pay, submit_loan
from tests.conftest import World, assert_problem, fresh_world


def outbox(db: Database, loan_id: str) -> list[OutboxEvent]:
    with db.session(writer=False) as session:
        return list(
            session.scalars(select(OutboxEvent).where(OutboxEvent.stream == loan_id).order_by(OutboxEvent.sequence))
        )


def test_a_loans_life_is_in_the_outbox_in_order_with_a_gap_free_sequence(world: World, db: Database) -> None:
    loan = active_loan(world, principal="1200.00", term=12)
    r = pay(world, loan["id"], "100.00", external_id=None)
    assert r.status_code == 201, r.text
    tx_id = r.json()["transaction_id"]
    rev = world.post("manager", f"{LOANS}/{loan['id']}/transactions/{tx_id}/reverse", {"reason": "bounced"})
    assert rev.status_code == 200, rev.text
    payoff = world.get("manager", f"{LOANS}/{loan['id']}/payoff").json()["total"]
    assert pay(world, loan["id"], payoff).status_code == 201
    rows = outbox(db, loan["id"])
    assert [r.type for r in rows] == [
        "loan.submitted",
        "loan.approved",
        "loan.disbursed",
        "loan.payment_received",
        "loan.transaction_reversed",
        "loan.payment_received",
        "loan.closed",
    ]
    assert [r.sequence for r in rows] == list(range(1, 8))
    paid = rows[3].payload
    assert paid["type"] == "loan.payment_received" and paid["timestamp"].endswith("Z")
    assert paid["data"]["loan_id"] == loan["id"] and paid["data"]["sequence"] == 4
    assert paid["data"]["transaction"]["id"] == tx_id and paid["data"]["transaction"]["amount"] == "100.00"
    assert Decimal(paid["data"]["transaction"]["allocation"]["principal"]) > 0
    assert rows[4].payload["data"]["transaction"]["reversal_of"] == tx_id
    assert rows[4].payload["data"]["reason"] == "bounced"
    assert rows[-1].payload["data"]["loan"]["status"] == "closed"
    assert len({r.event_id for r in rows}) == 7 and all(r.event_id.startswith("msg_") for r in rows)


def test_dry_runs_refusals_and_replays_add_nothing(world: World, db: Database) -> None:
    loan = active_loan(world)
    before = len(outbox(db, loan["id"]))
    assert pay(world, loan["id"], "50.00", **{}).status_code == 201
    dry = world.post(
        "manager", f"{LOANS}/{loan['id']}/payments?dry_run=true", {"amount": "10.00"}, headers={"Idempotency-Key": "x"}
    )
    assert dry.status_code == 200, dry.text
    assert_problem(pay(world, loan["id"], "-1"), 422)
    key = "replay-key-outbox"
    assert pay(world, loan["id"], "20.00", key=key).status_code == 201
    replayed = pay(world, loan["id"], "20.00", key=key)
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    rows = outbox(db, loan["id"])
    assert len(rows) == before + 2
    assert [r.sequence for r in rows] == list(range(1, len(rows) + 1))


def test_rejection_withdrawal_and_write_off_are_published(world: World, db: Database) -> None:
    rejected = submit_loan(world)
    assert act(world, rejected["id"], "reject", {"reason": "income"}).status_code == 200
    withdrawn = submit_loan(world)
    assert act(world, withdrawn["id"], "withdraw", {"reason": "changed mind"}, who="officer_a").status_code == 200
    written = active_loan(world)
    assert act(world, written["id"], "write-off", {"reason": "fraud"}).status_code == 200
    types: dict[str, list[Any]] = {
        key: [r.type for r in outbox(db, loan["id"])]
        for key, loan in (("r", rejected), ("w", withdrawn), ("o", written))
    }
    assert types == {
        "r": ["loan.submitted", "loan.rejected"],
        "w": ["loan.submitted", "loan.withdrawn"],
        "o": ["loan.submitted", "loan.approved", "loan.disbursed", "loan.written_off"],
    }
    assert outbox(db, rejected["id"])[1].payload["data"]["reason"] == "income"


def test_close_of_business_publishes_cob_completed_on_its_own_stream() -> None:


    with fresh_world() as (w, database):
        active_loan(w)
        today = w.get("manager", "/api/v1/operations/business-date").json()["business_date"]
        r = w.post("manager", "/api/v1/operations/close-of-business", {})
        assert r.status_code == 200, r.text
        again = w.post("manager", "/api/v1/operations/close-of-business", {"business_date": today})
        assert again.status_code == 200, again.text
        rows = outbox(database, "cob")
        assert [(x.type, x.sequence) for x in rows] == [("cob.completed", 1)]
        assert rows[0].payload["data"]["business_date"] == today
        assert rows[0].payload["data"]["loans_processed"] == 1


def test_close_of_business_publishes_late_fees_and_delinquency_in_the_loans_sequence() -> None:
    from datetime import date, timedelta

    from tests.api.helpers_lending import make_product

    with fresh_world() as (w, database):
        product = make_product(w, late_fee={"amount": "15", "grace_days": 5})
        loan = active_loan(w, product=product)
        today = date.fromisoformat(w.get("manager", "/api/v1/operations/business-date").json()["business_date"])
        through = today + timedelta(days=45)
        r = w.post("manager", "/api/v1/operations/close-of-business", {"business_date": through.isoformat()})
        assert r.status_code == 200, r.text
        assert pay(w, loan["id"], "5.00").status_code == 201
        rows = outbox(database, loan["id"])
        types = [x.type for x in rows]
        assert types[:3] == ["loan.submitted", "loan.approved", "loan.disbursed"]
        assert types[3:] == ["loan.delinquent", "loan.late_fee_charged", "loan.payment_received"], types
        assert [x.sequence for x in rows] == list(range(1, len(rows) + 1))
        fee = rows[4].payload["data"]
        assert fee["penalties"] == "15.00" and fee["installment"] == 1
        due = date.fromisoformat(fee["due_date"])
        assert fee["business_date"] == (due + timedelta(days=6)).isoformat()
        moved = rows[3].payload["data"]
        assert (moved["from_bucket"], moved["to_bucket"]) == ("current", "1-30")
        assert moved["business_date"] == (due + timedelta(days=1)).isoformat()
        assert len(outbox(database, "cob")) == 46
        with database.session(writer=False) as session:  # the loan row counts its stream (no max() per write)
            assert session.scalar(select(Loan.outbox_seq).where(Loan.id == loan["id"])) == len(rows)


def test_the_worker_fans_events_out_to_the_endpoints_subscribed_when_they_were_written() -> None:
    """The writer's transaction only writes the outbox; the delivery worker creates the deliveries — for each
    active endpoint that existed when the event was written and subscribes to its type, in sequence order."""
    from app.events.delivery import fan_out
    from app.events.models import WebhookDelivery

    with fresh_world() as (w, database):
        early = w.post("admin", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/a", "events": ["loan.*"]}).json()
        payments = w.post(
            "admin", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/b", "events": ["loan.payment_received"]}
        ).json()
        loan = active_loan(w)
        assert pay(w, loan["id"], "5.00").status_code == 201
        late = w.post("admin", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/c", "events": ["*"]}).json()
        with database.session(writer=False) as session:
            assert session.scalars(select(WebhookDelivery.id)).all() == []  # none written with the change
        assert fan_out(database) == len(outbox(database, loan["id"])) == 4
        assert fan_out(database) == 0  # each event once
        with database.session(writer=False) as session:
            got = session.execute(
                select(WebhookDelivery.endpoint_id, WebhookDelivery.sequence, WebhookDelivery.event_type)
                .order_by(WebhookDelivery.endpoint_id, WebhookDelivery.sequence)
            ).all()
        assert sorted(got) == sorted(
            [(early["id"], n, t) for n, t in enumerate(
                ["loan.submitted", "loan.approved", "loan.disbursed", "loan.payment_received"], start=1)]
            + [(payments["id"], 4, "loan.payment_received")]
        )
        assert late["id"] not in {row[0] for row in got}
