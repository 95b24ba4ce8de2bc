"""Records: SQLAlchemy models, migrations and the store API."""
