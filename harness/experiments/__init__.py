"""Config-driven experiment runners."""
