"""The bridge's database: SQLAlchemy 2 async on SQLite (default) or PostgreSQL."""
