"""SMS experiments: design (sample size, assignment), analysis (tests, CUPED, factorial effects),
the decision (copy, send time, profit), always-valid monitoring and customer response history."""
from crmlab.experiments.responses import response_history  # noqa: F401  (crmlab.experiments.response_history)
