"""Kafka -> validated events: decoding, validation, the consumer and its offset bookkeeping."""
