"""The pure core of PolicyWatch: plain data and pure functions, standard library only.

Everything under ``models`` except ``models.db`` imports nothing outside the standard library
(``tests/test_conventions.py`` enforces it). ``models.db`` is the SQLAlchemy adapter.
"""
