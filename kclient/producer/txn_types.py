"""Value types of the transactional producer API shared with the consumer.

:class:`ConsumerGroupMetadata` is what ``AsyncConsumer.group_metadata()`` returns and
what ``send_offsets_to_transaction`` takes: the group identity the TxnOffsetCommit
carries so that the group coordinator can fence a zombie from an older generation
(KIP-447).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConsumerGroupMetadata"]


@dataclass(frozen=True, slots=True)
class ConsumerGroupMetadata:
    """A consumer's group identity at one moment.

    ``generation_id`` -1 and ``member_id`` "" mean "no generation check": what a
    plain group id gives (the pre-KIP-447 form, no zombie fencing).
    """

    group_id: str
    generation_id: int = -1
    member_id: str = ""
    group_instance_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.group_id, str) or not self.group_id:
            raise ValueError(f"group_id must be a non-empty string, got {self.group_id!r}")
        if type(self.generation_id) is not int or self.generation_id < -1:
            raise ValueError(f"generation_id must be an int >= -1, got {self.generation_id!r}")
        if not isinstance(self.member_id, str):
            raise ValueError(f"member_id must be a string, got {self.member_id!r}")
        if self.group_instance_id is not None and not isinstance(self.group_instance_id, str):
            raise ValueError("group_instance_id must be a string or None")
