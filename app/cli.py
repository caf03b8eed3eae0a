"""`loanctl`: operator commands (also `python -m app.cli`)."""

from typing import Annotated

import typer

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
    """Apply database migrations up to the newest schema (safe to run repeatedly)."""
    init_db()
    typer.echo("database is at the newest schema")


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
    finally:
        db.dispose()
    if given:
        typer.echo("created user 'admin' with the password from ADMIN_PASSWORD")
    else:
        typer.echo(f"created user 'admin' with the generated password: {password}  (shown once; store it now)")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
