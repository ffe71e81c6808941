"""Admin pages: agents and brands."""
