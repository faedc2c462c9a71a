"""IR passes, one per file; each takes and returns an IR Graph (see ``DEFAULT_PIPELINE``)."""
