"""Fixture plugin ``broken``: importing it fails, so a test can prove that a plugin
left out of CRM_PLUGINS is never imported, and that the error names the plugin."""

raise RuntimeError("crm_broken must never be imported unless enabled")
