"""Golden wire vectors produced by kafka-python (see generate.py)."""
