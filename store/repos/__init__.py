"""Small repository functions: one module per aggregate, each taking an ``AsyncSession``.

They never commit: the caller owns the transaction, so a checkpoint and the rows it covers
(or a status change and its outbox event) are written together.
"""
