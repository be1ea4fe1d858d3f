"""Results topic, dead letters, and the offset commits they allow."""
