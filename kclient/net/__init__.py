"""Connections to brokers: transport, TLS, framing driver, version negotiation, SASL, pool."""
