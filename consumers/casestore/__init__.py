"""The case store: cases.events materialized into a database (SQLite or PostgreSQL), and the status API over it."""
