"""Pipeline specs: the model (:mod:`.model`), the knob table (:mod:`.knobs`), the built-in spec
(:mod:`.defaults`, from ``template.yaml``) and the roles by which components are found (:mod:`.roles`)."""

from ragship.spec.defaults import (
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_USER_PROMPT,
    default_spec,
    load_spec,
    spec_from_settings,
    with_overrides,
)
from ragship.spec.knobs import GRID_KEYS, KNOBS, Knob, default_of
from ragship.spec.model import CHUNK_FORMAT_VERSION, SPEC_VERSION, TOP_LEVEL_KEYS, PipelineSpec, parse_mode
from ragship.spec.roles import Role

__all__ = [
    "CHUNK_FORMAT_VERSION",
    "DEFAULT_SYSTEM_PROMPT",
    "DEFAULT_USER_PROMPT",
    "GRID_KEYS",
    "KNOBS",
    "SPEC_VERSION",
    "TOP_LEVEL_KEYS",
    "Knob",
    "PipelineSpec",
    "Role",
    "default_of",
    "default_spec",
    "load_spec",
    "parse_mode",
    "spec_from_settings",
    "with_overrides",
]
