"""Who may see what: principals (API keys, OIDC tokens) with scopes, and the access groups of documents.

``scope`` (the filter every search carries) sits at the foundation; ``marks`` reads a document's groups at
indexing; ``principal``, ``keys``, ``tokens`` and ``authenticate`` resolve a request's caller; ``limits``
caps what each caller may send. See docs/security.md.
"""
