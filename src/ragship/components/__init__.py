"""Ragship's Haystack components. Registered on Haystack's deserialization allowlist on import."""

from haystack.core.serialization_security import allow_deserialization_module

# Specs name these classes by module path; Haystack 3 only imports allow-listed modules.
allow_deserialization_module("ragship.components")
