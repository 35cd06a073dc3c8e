"""Python cells: one interpreter per Markdown file (``session``) running ``worker`` in a child.

PYTEST_DONT_REWRITE
"""
