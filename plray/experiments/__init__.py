"""Experiments: from a specification to extracted world models and their evaluation."""
