"""Interim demo: start the embedded Tansu broker and print the API versions it advertises.

This is NOT the kclient demo yet: it uses only ``kclient.testing.TansuBroker`` and its
hand-built ApiVersions v0 probe (no generated codec, no network client). ``scripts/demo``
switches to ``python -m kclient demo`` once that exists.

    python scripts/codec_demo.py             # human-readable table
    python scripts/codec_demo.py --markdown  # the table in docs/design-notes/tansu-quirks.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kclient.testing import TansuBroker, TansuError

# api key -> (name, validVersions in the Apache Kafka message specs this repo is built from)
SPEC_APIS: dict[int, tuple[str, str]] = {
    0: ("Produce", "0-11"),
    1: ("Fetch", "0-17"),
    2: ("ListOffsets", "0-10"),
    3: ("Metadata", "0-12"),
    4: ("LeaderAndIsr", "0-7"),
    5: ("StopReplica", "0-4"),
    6: ("UpdateMetadata", "0-8"),
    7: ("ControlledShutdown", "0-3"),
    8: ("OffsetCommit", "0-9"),
    9: ("OffsetFetch", "0-9"),
    10: ("FindCoordinator", "0-6"),
    11: ("JoinGroup", "0-9"),
    12: ("Heartbeat", "0-4"),
    13: ("LeaveGroup", "0-5"),
    14: ("SyncGroup", "0-5"),
    15: ("DescribeGroups", "0-5"),
    16: ("ListGroups", "0-5"),
    17: ("SaslHandshake", "0-1"),
    18: ("ApiVersions", "0-4"),
    19: ("CreateTopics", "0-7"),
    20: ("DeleteTopics", "0-6"),
    21: ("DeleteRecords", "0-2"),
    22: ("InitProducerId", "0-5"),
    23: ("OffsetForLeaderEpoch", "0-4"),
    24: ("AddPartitionsToTxn", "0-5"),
    25: ("AddOffsetsToTxn", "0-4"),
    26: ("EndTxn", "0-5"),
    27: ("WriteTxnMarkers", "0-1"),
    28: ("TxnOffsetCommit", "0-4"),
    29: ("DescribeAcls", "0-3"),
    30: ("CreateAcls", "0-3"),
    31: ("DeleteAcls", "0-3"),
    32: ("DescribeConfigs", "0-4"),
    33: ("AlterConfigs", "0-2"),
    34: ("AlterReplicaLogDirs", "0-2"),
    35: ("DescribeLogDirs", "0-4"),
    36: ("SaslAuthenticate", "0-2"),
    37: ("CreatePartitions", "0-3"),
    38: ("CreateDelegationToken", "0-3"),
    39: ("RenewDelegationToken", "0-2"),
    40: ("ExpireDelegationToken", "0-2"),
    41: ("DescribeDelegationToken", "0-3"),
    42: ("DeleteGroups", "0-2"),
    43: ("ElectLeaders", "0-2"),
    44: ("IncrementalAlterConfigs", "0-1"),
    45: ("AlterPartitionReassignments", "0"),
    46: ("ListPartitionReassignments", "0"),
    47: ("OffsetDelete", "0"),
    48: ("DescribeClientQuotas", "0-1"),
    49: ("AlterClientQuotas", "0-1"),
    50: ("DescribeUserScramCredentials", "0"),
    51: ("AlterUserScramCredentials", "0"),
    52: ("Vote", "0-1"),
    53: ("BeginQuorumEpoch", "0-1"),
    54: ("EndQuorumEpoch", "0-1"),
    55: ("DescribeQuorum", "0-2"),
    56: ("AlterPartition", "0-3"),
    57: ("UpdateFeatures", "0-2"),
    58: ("Envelope", "0"),
    59: ("FetchSnapshot", "0-1"),
    60: ("DescribeCluster", "0-1"),
    61: ("DescribeProducers", "0"),
    62: ("BrokerRegistration", "0-4"),
    63: ("BrokerHeartbeat", "0-1"),
    64: ("UnregisterBroker", "0"),
    65: ("DescribeTransactions", "0"),
    66: ("ListTransactions", "0-1"),
    67: ("AllocateProducerIds", "0"),
    68: ("ConsumerGroupHeartbeat", "0-1"),
    69: ("ConsumerGroupDescribe", "0"),
    70: ("ControllerRegistration", "0"),
    71: ("GetTelemetrySubscriptions", "0"),
    72: ("PushTelemetry", "0"),
    73: ("AssignReplicasToDirs", "0"),
    74: ("ListClientMetricsResources", "0"),
    75: ("DescribeTopicPartitions", "0"),
    76: ("ShareGroupHeartbeat", "0"),
    77: ("ShareGroupDescribe", "0"),
    78: ("ShareFetch", "0"),
    79: ("ShareAcknowledge", "0"),
    80: ("AddRaftVoter", "0"),
    81: ("RemoveRaftVoter", "0"),
    82: ("UpdateRaftVoter", "0"),
    83: ("InitializeShareGroupState", "0"),
    84: ("ReadShareGroupState", "0"),
    85: ("WriteShareGroupState", "0"),
    86: ("DeleteShareGroupState", "0"),
    87: ("ReadShareGroupStateSummary", "0"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        with TansuBroker() as broker:
            ready_ms = (time.monotonic() - started) * 1000
            versions = broker.api_versions
            bootstrap = broker.bootstrap_servers
    except TansuError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.markdown:
        print("| key | API | Tansu min | Tansu max | spec validVersions |")
        print("|---:|---|---:|---:|---|")
        for key, (lo, hi) in sorted(versions.items()):
            name, spec = SPEC_APIS.get(key, ("?", "?"))
            print(f"| {key} | {name} | {lo} | {hi} | {spec} |")
        return 0
    print(f"Tansu broker ready on {bootstrap} in {ready_ms:.0f} ms (stopped again)")
    print(f"It advertises {len(versions)} APIs (ApiVersions v0, hand-built request):")
    for key, (lo, hi) in sorted(versions.items()):
        name, spec = SPEC_APIS.get(key, ("?", "?"))
        print(f"  {key:>3}  {name:<30} v{lo}-v{hi}   (spec {spec})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
