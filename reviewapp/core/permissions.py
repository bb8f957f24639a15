"""DRF permission classes per role; object-level rules live in each app's selectors."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from reviewapp.core.roles import Role, user_has_role


class _HasRole(BasePermission):
    roles: tuple[Role, ...] = ()

    def has_permission(self, request: Request, view: Any) -> bool:
        return any(user_has_role(request.user, role) for role in self.roles)


class IsCoordinator(_HasRole):
    roles = (Role.COORDINATOR,)


class IsAnalyst(_HasRole):
    roles = (Role.ANALYST,)


class IsCoordinatorOrAnalyst(_HasRole):
    roles = (Role.COORDINATOR, Role.ANALYST)


class IsReader(_HasRole):
    roles = (Role.READER,)


class IsAdmin(_HasRole):
    roles = (Role.ADMIN,)
