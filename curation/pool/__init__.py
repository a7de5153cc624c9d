"""The pool: reading rows (`rows`), ingest and gold overrides (`ingest`), the on-disk store every stage runs on
(`store`), and the embedded CHAMP pool (`champ`)."""
