"""What a run reports: metrics over graded samples (`metrics`), a benchmark's summary and reports (`report`), the
self-contained HTML page shared with curation (`html_page` with its ``.js`` and ``.css``), a benchmark's samples
page (`samples_page`) and the suite table over benchmarks (`suite`).
"""
