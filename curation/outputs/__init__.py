"""What a curation run writes: the curated files and their accounting (writer), the report and its plots."""
