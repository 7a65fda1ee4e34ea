"""Adversarial tenancy suite: the application role, bound to org A, tries every table, view and function
of schema ``crm`` with org B's ids, and nothing of B is read or changed.

Built from the catalog (pg_class / pg_proc), so a table, view or function added later without coverage
fails here until it is covered. Extends ``tests/test_rls.py`` (six tables, hand-listed) to everything.
"""
