"""`loanctl`: operator commands (also `python -m app.cli`)."""

from datetime import date
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from app.core.config import get_settings
from app.core.errors import AppError
from app.database import Database, init_db
from app.identity import service as identity
from app.identity.access import Role

cli = typer.Typer(
    help="Loan lifecycle backend: operator commands.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _db() -> Database:
    settings = get_settings()
    return Database(settings.database_url, pool_size=2)


@cli.command("init-db")
def init_db_command() -> None:
    """Create the database or apply migrations up to the newest schema (safe to run repeatedly)."""
    result = init_db()
    if result.created:
        db = _db()
        try:
            with db.session(writer=False) as session:
                from app.business_calendar import repository as calendar_repo

                today = calendar_repo.business_date(session)
        finally:
            db.dispose()
        typer.echo(f"created a new database at {result.url} (schema {result.after}); business date {today}")
        typer.echo("next: loanctl bootstrap-admin (or make run), then loanctl seed-demo for demo data")
    elif result.migrated:
        typer.echo(f"migrated {result.url} from schema {result.before} to {result.after}")
    else:
        typer.echo(f"{result.url} is already at the newest schema ({result.after}); nothing to do")


@cli.command("create-user")
def create_user(
    username: str,
    role: Annotated[Role, typer.Option(help="admin, manager, officer or auditor")],
    branch: Annotated[str | None, typer.Option(help="branch code (required for officers)")] = None,
    password: Annotated[str | None, typer.Option(help="prompted without echo when omitted")] = None,
) -> None:
    """Create a user."""
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 12:
        typer.echo("error: the password must have at least 12 characters", err=True)
        raise typer.Exit(2)
    db = _db()
    try:
        _user, created = identity.ensure_user(db, username, password, role, branch)
    except AppError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
    finally:
        db.dispose()
    if not created:
        typer.echo(f"error: user {username!r} already exists", err=True)
        raise typer.Exit(1)
    typer.echo(f"created {role.value} {username!r}")


@cli.command("bootstrap-admin")
def bootstrap_admin() -> None:
    """On an empty database, create `admin` with ADMIN_PASSWORD or a generated password printed once."""
    settings = get_settings()
    db = _db()
    try:
        if identity.has_users(db):
            return
        given = settings.admin_password.get_secret_value() if settings.admin_password else None
        password = given or identity.generate_password()
        identity.ensure_user(db, "admin", password, Role.admin)
    except AppError as exc:
        typer.echo(f"error: ADMIN_PASSWORD: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
    finally:
        db.dispose()
    if given:
        typer.echo("created user 'admin' with the password from ADMIN_PASSWORD")
    else:
        typer.echo(f"created user 'admin' with the generated password: {password}  (shown once; store it now)")


@cli.command("close-day")
def close_day(
    date: Annotated[
        str | None, typer.Option(help="close every day through this date (default: the business date)")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=32, help="worker processes (PostgreSQL)")] = 1,
    chunk_size: Annotated[int, typer.Option(min=1, max=1_000_000, help="loans per chunk")] = 5_000,
) -> None:
    """Close of business: accrue interest, age loans, charge late fees; then advance the business date."""
    from datetime import date as date_type

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from app.core.schemas import money_out
    from app.operations import cob

    through = None
    if date is not None:
        try:
            through = date_type.fromisoformat(date)
        except ValueError as exc:
            typer.echo("error: --date must be YYYY-MM-DD", err=True)
            raise typer.Exit(2) from exc
    db = _db()
    columns = (
        TextColumn("close of business"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task("chunks", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            results = cob.close_through(db, through, workers=workers, chunk_size=chunk_size, progress=progress)
    except AppError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    finally:
        db.dispose()
    for r in results:
        state = "already closed" if r.already_closed else f"{r.duration_ms} ms"
        interest = ", ".join(f"{c} {money_out(a, c)}" for c, a in r.interest_by_currency.items()) or "none"
        fees = ", ".join(f"{c} {money_out(a, c)}" for c, a in r.late_fees_by_currency.items()) or "none"
        typer.echo(
            f"{r.business_date}: {r.loans_processed} loans, interest accrued {interest}, "
            f"{r.late_fee_count} late fees ({fees}), {state}"
        )


@cli.command("deliver-events")
def deliver_events(
    once: Annotated[bool, typer.Option("--once", help="deliver what is due, process pending batches, exit")] = False,
) -> None:
    """The events worker: webhook deliveries, RabbitMQ publishing (AMQP_URL), payment batches. Runs until
    SIGTERM (finishes the round in hand, exit 0); with --once it does what is due now and exits."""
    from app.core.logging import configure_logging
    from app.events.worker import Worker

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    db = Database(settings.database_url, pool_size=settings.worker_concurrency + 2)
    worker = Worker(db, settings)
    worker.install_signal_handlers()
    try:
        totals = worker.run(once=once)
    finally:
        db.dispose()
    typer.echo(
        f"delivered {totals.webhooks} webhook attempts, published {totals.published} events, "
        f"processed {totals.batch_rows} batch rows"
    )


@cli.command("verify-ledger")
def verify_ledger() -> None:
    """Check that every journal entry and every currency's books balance, and that every loan's journal lines
    equal its balances per account (exit 1 listing the problems, naming the loans that differ)."""
    from app.ledger import service as ledger
    from app.loans import reconcile

    db = _db()
    try:
        problems = ledger.verify(db)
        with db.session(writer=False) as session:
            problems += [str(m) for m in reconcile.mismatches(session)]
        totals = [] if problems else _book_totals(db)
    except SQLAlchemyError as exc:
        typer.echo(f"error: cannot read the ledger ({type(exc).__name__}); is the database migrated?", err=True)
        raise typer.Exit(2) from exc
    finally:
        db.dispose()
    if problems:
        typer.echo(f"ledger check FAILED: {len(problems)} problem(s)", err=True)
        for problem in problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(1)
    typer.echo("ledger OK: every journal entry balances and every loan's ledger equals its balances")
    for code, debit, credit in totals:
        typer.echo(f"  {code}: total debits {debit} = total credits {credit}")


def _book_totals(db: Database) -> list[tuple[str, str, str]]:
    """(currency, total debits, total credits) over the whole journal, for the verify-ledger summary."""
    from app.core.schemas import money_out
    from app.ledger import repository as ledger_repo

    totals = []
    with db.session(writer=False) as session:
        for code in ledger_repo.currencies_in_books(session):
            rows = ledger_repo.trial_balance(session, date.max, code)
            debit, credit = sum(r[1] for r in rows), sum(r[2] for r in rows)
            totals.append((code, money_out(debit, code), money_out(credit, code)))
    return totals


@cli.command("seed-demo")
def seed_demo(
    password: Annotated[
        str | None, typer.Option(help="password for every demo user (default: one generated each, printed)")
    ] = None,
) -> None:
    """Create a demo branch, one user per role, two products, borrowers and loans in several states."""
    from app.demo import DEMO_BRANCH
    from app.demo import seed_demo as seed

    if password is not None and len(password) < 12:
        typer.echo("error: the password must have at least 12 characters", err=True)
        raise typer.Exit(2)
    from app.core.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    init_db()
    db = _db()
    try:
        result = seed(db, settings, password)
    except AppError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
    finally:
        db.dispose()
    if result.skipped:
        typer.echo(f"the demo branch {DEMO_BRANCH!r} already exists: nothing to do")
        return
    typer.echo(f"seeded the demo branch {DEMO_BRANCH!r}")
    typer.echo("users (shown once; store the passwords now):")
    for user in result.users:
        shown = "(unchanged: the user already existed)" if user.password is None else user.password
        if password is not None and user.password is not None:
            shown = "(the --password given)"
        typer.echo(f"  {user.role.value:<8} {user.username:<16} {shown}")
    typer.echo("products: " + ", ".join(f"{code} ({pid})" for code, pid in result.products.items()))
    typer.echo(f"borrowers: {len(result.borrowers)}")
    typer.echo("loans:")
    for status, loan_id in result.loans.items():
        typer.echo(f"  {status:<12} {loan_id}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
