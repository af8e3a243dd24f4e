"""Pure types and rules: no SQLAlchemy, no HTTP."""
