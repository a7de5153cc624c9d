"""The chance baselines a curation is measured against (`method` registers ``curate.method: baseline``)."""
