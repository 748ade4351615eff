"""SAPIENT (BSI Flex 335 v2.0), the UK counter-UAS sensor interface, with skyfence as
a fusion node: sensor nodes register with it and send detections; it reports its
fused tracks up to a parent fusion node. Awareness only: effector nodes are refused
and only sensing tasks are accepted.

- ``codec``: 4-byte little-endian length framing, ``parse``/``encode``, ``SapientDecoder``;
- ``node``: ``FusionNode``, the state machine for sensor nodes, and its detections;
- ``uplink``: ``ParentSession``, our registration and tracks as DetectionReports;
- ``transport``: ``serve`` and ``connect_parent`` over asyncio TCP;
- ``frames``: UTM and the turn of a node's angles into the deployment's ENU frame;
- ``proto``: the message classes, generated from our copy of the interface.
"""

from skyfence.adapters.sapient.codec import (
    SapientDecoder,
    SapientError,
    SapientFrame,
    encode,
    parse,
)
from skyfence.adapters.sapient.node import (
    FusionNode,
    FusionNodeConfig,
    NodeBatch,
    Outcome,
    task_decision,
)
from skyfence.adapters.sapient.transport import ConnectionLimits, Outbox, connect_parent, serve
from skyfence.adapters.sapient.uplink import ParentSession, UplinkConfig

__all__ = [
    "ConnectionLimits",
    "FusionNode",
    "FusionNodeConfig",
    "NodeBatch",
    "Outbox",
    "Outcome",
    "ParentSession",
    "SapientDecoder",
    "SapientError",
    "SapientFrame",
    "UplinkConfig",
    "connect_parent",
    "encode",
    "parse",
    "serve",
    "task_decision",
]
