"""Stage gates: what moving an opportunity into a stage requires, configured per pipeline
and stage by the company (no code), with requirement kinds contributed by plugins through
``crm_register_stage_requirements``."""

from crm_core.stagegates.registry import ParamInput, RequirementKind

__all__ = ["ParamInput", "RequirementKind"]
