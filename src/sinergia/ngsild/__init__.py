"""The NGSI-LD standard, pure: model, contexts, query languages, representations, errors.

Nothing in this package imports anything else of Sinergia's, and nothing here does I/O except
the context resolver's (bounded, cached) fetch of remote @contexts.
"""
