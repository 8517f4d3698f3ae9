"""SMS experiments: design (sample size, assignment) and analysis (tests, factorial, verdict)."""
