from __future__ import annotations

import getpass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviewapp.accounts.services import user_create
from reviewapp.core.roles import Role


class Command(BaseCommand):
    help = "Create a user with one or more roles (reader, coordinator, analyst, admin)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--role", action="append", required=True, choices=[r.value for r in Role]
        )
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password", help="Prefer the prompt or RADREVIEW_NEW_PASSWORD over this flag."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        import os

        password = options["password"] or os.environ.get("RADREVIEW_NEW_PASSWORD")
        if not password:
            password = getpass.getpass("Password: ")
        try:
            user = user_create(
                username=options["username"],
                password=password,
                roles=[Role(r) for r in options["role"]],
                email=options["email"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"Created {user.username} with roles {', '.join(options['role'])}.")
