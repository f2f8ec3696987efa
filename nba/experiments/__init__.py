"""Experiments: which arms a customer is in (assign.py) and the rule set each combination
of arms decides with (variants.py). The Decider routes each decision to its variant."""
