"""Presentation primitives: the one formatter, result cards, figures, safe CSV lists."""
