"""Cluster metadata: immutable snapshots and the refresh driver."""
