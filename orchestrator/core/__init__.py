"""Records and what everything stands on: the tables (``models``), settings, the clock, the
error tree, the database and its migrations, principals and tokens (``auth``), and who may see
which record (``access``).

Imports nothing else of ``orchestrator``.
"""
