"""`gplx-bus users add|rotate PRINCIPAL`: SCRAM-SHA-512 credentials with a generated password.

The password goes to the credentials file (0600) and the principal's two client config files (0600) of the
secured stack's folder (or --secrets-dir); it is printed only with --show-password.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from deploy.local.cluster import load_state
from deploy.local.errors import LauncherError
from deploy.local.security import SecureFiles, new_password, upsert_scram_users, user_name, wait_scram_users
from deploy.local.settings import gplx_home
from gplx_bus.commands import options
from gplx_bus.commands.acls import connect_admin

app = typer.Typer(no_args_is_help=True, help="SCRAM users: create them, rotate their passwords.")
console = Console(stderr=True)


def _secrets(secrets_dir: Path | None) -> SecureFiles:
    if secrets_dir is not None:
        return SecureFiles(secrets_dir)
    state = load_state(gplx_home())
    if state is None or state.secure_dir is None:
        raise LauncherError("no secrets folder: give --secrets-dir DIR (holding ca.pem), or start a secured local "
                            "stack with `gplx-bus local up --secure`")
    return SecureFiles(Path(state.secure_dir))


def _set_password(principal: str, must_exist: bool, secrets_dir, client_config, bootstrap, show: bool) -> None:
    user = user_name(principal)
    files = _secrets(secrets_dir)
    admin = connect_admin(bootstrap, client_config)
    try:
        known = admin.describe_user_scram_credentials([user]).get(user, {})
        exists = bool(known.get("credential_infos"))
        if exists != must_exist:
            raise LauncherError(f"User:{user} already has a SCRAM credential; use `gplx-bus users rotate User:{user}`"
                                if exists else
                                f"User:{user} has no SCRAM credential yet; use `gplx-bus users add User:{user}`")
        password = new_password()
        upsert_scram_users(admin, {user: password})
        wait_scram_users(admin, [user])
        bootstrap_servers = admin.config["bootstrap_servers"]
    finally:
        admin.close()
    config = files.save_password(user, password, bootstrap_servers)
    console.print(f"{'rotated' if must_exist else 'created'} User:{user}; client config: {config} "
                  f"(librdkafka/kcat: {files.kcat_config(user)})")
    if show:
        print(password)


def secrets_dir_option():
    return typer.Option(None, "--secrets-dir", file_okay=False,
                        help="Folder with ca.pem where credentials and client configs go "
                             "(default: the secured local stack's).")


@app.command()
def add(
    principal: str = typer.Argument(..., help="User:<name>, e.g. User:province-01"),
    show_password: bool = typer.Option(False, "--show-password", help="Also print the password on stdout."),
    secrets_dir: Path = secrets_dir_option(),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
) -> None:
    """Create a SCRAM user with a generated password.

    Example: gplx-bus users add User:province-01
    """
    _set_password(principal, False, secrets_dir, client_config, bootstrap, show_password)


@app.command()
def rotate(
    principal: str = typer.Argument(..., help="User:<name>, e.g. User:province-01"),
    show_password: bool = typer.Option(False, "--show-password", help="Also print the new password on stdout."),
    secrets_dir: Path = secrets_dir_option(),
    bootstrap: Optional[str] = options.bootstrap_servers(),
    client_config: Optional[str] = options.client_config(),
) -> None:
    """Give an existing SCRAM user a new generated password (the old one stops working).

    Example: gplx-bus users rotate User:province-01 --client-config admin.properties
    """
    _set_password(principal, True, secrets_dir, client_config, bootstrap, show_password)
