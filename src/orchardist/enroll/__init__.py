"""Over-the-air enrollment: directory login, invitations, the profile service phases."""
