"""Preference pairs for DPO / DiscoPOP (`pairs`); `method` registers ``curate.method: pairs``."""
