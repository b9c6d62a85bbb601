"""The ground every layer stands on: the error tree and the few types all layers share.

It imports nothing of the project, so ``chain/``, ``store/``, the four parts and the composition
root (``aiw3/``) can all import it without pulling each other in.
"""
