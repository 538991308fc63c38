"""HQ's ingest: every post's messages in, held to bounds, fused, committed in groups, and
acknowledged after the commit.

- `ingest`: `Ingest`, one group of messages through validation, fusion, the alert
  detectors and one store transaction.
- `checks`, `rate`: what a post may send (physical bounds, a rate per post).
- `client`: the MQTT side, which queues, hands groups over and acknowledges.
- `watchdog`: HQ not ready when a message waits too long for its commit.
- `delivery`: the committed batches confirmed to each node (end-to-end acknowledgement).
"""

from hq.ingest.ingest import MAX_PAYLOAD, Ingest, Outcome, Received

__all__ = ["MAX_PAYLOAD", "Ingest", "Outcome", "Received"]
