"""marketo-pipeline: keeps a Marketo instance in sync with lead-change events from Kafka."""

__version__ = "0.1.0"
