"""The consumer: pure planning cores (subscription, fetch session, membership,
offsets, assignors) and, on top of them, the driver tasks and the AsyncConsumer facade."""
