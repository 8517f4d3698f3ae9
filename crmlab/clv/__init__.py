"""Customer lifetime value: buy-till-you-die models, their likelihoods, the pipeline."""
