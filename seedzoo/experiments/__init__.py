"""Experiments that combine training and evaluation runs (each resumable, each writing its results)."""
