"""The producer: partitioner, batches, accumulator and idempotence (pure core).

The public ``AsyncProducer`` facade and its Sender task build on these modules;
see docs/design-notes/producer-core.md.
"""
