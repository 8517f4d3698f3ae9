"""Statistics with no crmlab imports above them: proportions and their intervals."""
