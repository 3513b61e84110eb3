"""Miauflix: the reference application of tickwork."""
