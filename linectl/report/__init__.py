"""The inspection report (检验报告) that the owner takes home, and the registry can check.

- `model`: what the report says, built from the store (the latest published
  result, the raw curves of its attempts, the revision history).
- `fields`: what each item, value, limit and reason is called, and its unit.
- `published`: the published results of an inspection and their verification code.
- `plots`: the SVG plots (brake curves, idle phases, free-acceleration peaks).
- `render`: HTML through Jinja2 and PDF through WeasyPrint; `render_report()`
  is what the command line and the HTTP API call.
- `cli`: `linectl report`.
"""

from linectl.report.published import verification_code
from linectl.report.render import CONTENT_TYPES, render_report, render_report_async

__all__ = ["CONTENT_TYPES", "render_report", "render_report_async", "verification_code"]
