"""Fixtures for the deployment-kit checks; the helpers (apt_install, psql, Proc, ...) live in kit.py."""

from tests.deploy.kit import procs, prod_roles, throwaway_db

__all__ = ["procs", "prod_roles", "throwaway_db"]
