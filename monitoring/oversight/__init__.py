"""Post-launch oversight: incidents with their EU AI Act Art. 73 deadlines, the Art. 72
post-market monitoring plan, periodic reviews (SR 26-2) and validation findings.

Models live in ``monitoring.oversight.models`` (imported at the end of ``monitoring.models``
so Django registers them with the monitoring app); writes in ``incidents`` and ``reviews``,
reads in ``selectors``, permissions in ``rules``, the API in ``api``, pages in ``views``.
"""
