"""The database: SQLAlchemy tables, async engine and sessions, repositories; the schema
itself is made by the Alembic migrations in ``migrations/``."""
