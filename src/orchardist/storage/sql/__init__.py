"""The SQL backend (SQLAlchemy 2 async + Alembic): the only package that imports them."""
