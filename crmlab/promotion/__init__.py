"""Big promotions (大促): the season calendar, the plan and the review."""
