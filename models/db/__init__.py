"""The SQLAlchemy adapter: tables, engine, migrations and repositories. ORM rows never leave
this package; repositories take and return the plain dataclasses of ``models``. Everything else
reaches the database through ``Database`` and ``UnitOfWork``."""

from models.db.database import Database, UnitOfWork

__all__ = ["Database", "UnitOfWork"]
