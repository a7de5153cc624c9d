"""LIMO's funnel; `method` registers ``curate.method: limo`` (the default)."""
