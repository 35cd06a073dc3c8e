"""The kinds of session a cell can run in; each module is one kind, behind ``base.Session``.

PYTEST_DONT_REWRITE
"""
