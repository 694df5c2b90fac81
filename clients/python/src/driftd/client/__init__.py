"""driftd Python client: `Client`, monitor handles that log without blocking, resumable alarm
subscriptions (`driftd.client.alarms`) and an asyncio variant (`driftd.client.aio`)."""

from driftd.client.client import Client, MonitorHandle
from driftd.client.sender import SenderStats

__all__ = ["Client", "MonitorHandle", "SenderStats"]
