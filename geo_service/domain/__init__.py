"""The domain kernel: the vocabulary (catalogue, models, schemas), coordinates, links,
errors, API keys and the audit trail, the import sheet. No web framework."""
