"""A simulated store with planted truth."""
