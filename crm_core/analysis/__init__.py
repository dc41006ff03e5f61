"""Analysis of the opportunities: the pipeline by dimension, lost deals, stage history and
velocity, and the daily pipeline snapshots behind the trend report. Every figure is
computed over the opportunities the reader may see (the access engine's query)."""

from crm_core.analysis.dimensions import ReportDimension

__all__ = ["ReportDimension"]
