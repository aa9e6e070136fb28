"""A deliverer that records what the outbox sends, and can be told to fail."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.outbox import Delivery, MessageRef, RetryLater


@dataclass
class RecordingDeliverer:
    deliveries: list[Delivery] = field(default_factory=list)
    fail_times: int = 0
    retry_after: float | None = None
    _next_id: int = 0

    async def deliver(self, delivery: Delivery) -> MessageRef:
        if self.fail_times > 0:
            self.fail_times -= 1
            if self.retry_after is not None:
                raise RetryLater(self.retry_after)
            raise ConnectionError("platform unavailable")
        self.deliveries.append(delivery)
        if delivery.existing is not None:
            return delivery.existing
        self._next_id += 1
        return MessageRef(
            delivery.conversation.channel,
            f"m{self._next_id}",
            delivery.parent.message_id if delivery.parent else None,
        )

    def keys(self) -> list[str]:
        return [d.note.key.split(":")[0] + (":edit" if d.existing else "") for d in self.deliveries]
