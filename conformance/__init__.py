"""Conformance checks of the protocol codec against the Kafka specs and other implementations."""
