"""The SQLAlchemy adapter: tables, engine, repositories. ORM rows never leave this package;
repositories return the plain dataclasses of ``models``."""
