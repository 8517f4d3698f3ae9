"""The ``crmlab`` command line."""
