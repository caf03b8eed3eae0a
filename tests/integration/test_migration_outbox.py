"""Migration 0015 on a database with events: each loan's outbox counter starts at its stream's last sequence
(the next event continues it, gap-free) and events written before it count as fanned out (they have their
deliveries already)."""

import sqlalchemy as sa
from alembic import command

from app.database import alembic_config
from tests.api.helpers_lending import active_loan, pay
from tests.conftest import fresh_world


def test_the_outbox_counter_is_backfilled_and_the_next_event_continues_the_sequence() -> None:
    with fresh_world() as (w, database):
        loan = active_loan(w)
        assert pay(w, loan["id"], "5.00").status_code == 201
        url = database.engine.url.render_as_string(hide_password=False)
        database.dispose()
        cfg = alembic_config(url)
        command.downgrade(cfg, "0014")
        command.upgrade(cfg, "head")
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            seq = conn.execute(sa.text("SELECT outbox_seq FROM loans WHERE id = :id"), {"id": loan["id"]}).scalar()
            assert seq == 4  # submitted, approved, disbursed, payment received
            assert conn.execute(sa.text("SELECT COUNT(*) FROM outbox_events WHERE NOT fanned_out")).scalar() == 0
        engine.dispose()
        assert pay(w, loan["id"], "5.00").status_code == 201
        with database.session(writer=False) as session:
            rows = session.execute(
                sa.text("SELECT sequence, fanned_out FROM outbox_events WHERE stream = :id ORDER BY sequence"),
                {"id": loan["id"]},
            ).all()
        assert [(r[0], bool(r[1])) for r in rows] == [(1, True), (2, True), (3, True), (4, True), (5, False)]
