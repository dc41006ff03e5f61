"""Opportunities on pipelines of stages: what plugins need is importable from here."""

from crm_core.opportunities.pipelines import PipelineSpec, StageSpec

__all__ = ["PipelineSpec", "StageSpec"]
