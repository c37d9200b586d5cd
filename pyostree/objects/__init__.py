"""OSTree objects."""
