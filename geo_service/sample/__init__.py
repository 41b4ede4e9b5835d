"""Sample data: load it (labelled as sample), its operations records, and remove it."""
