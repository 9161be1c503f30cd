"""PSA ticket notes: the grant's story on the MSP's own ticket (HaloPSA, ConnectWise Manage, Autotask).

Each channel adds one internal note to the ticket whose id is the delivery address, through the vendor's REST
API. Which PSA, its URL and its credentials come from settings; the credentials are constructor arguments
here, kept out of `repr` and out of every log line and error message.
"""

from __future__ import annotations

from jit.adapters.notify.psa.autotask import AutotaskChannel
from jit.adapters.notify.psa.connectwise import ConnectWiseChannel
from jit.adapters.notify.psa.halopsa import HaloPsaChannel

__all__ = ["AutotaskChannel", "ConnectWiseChannel", "HaloPsaChannel"]
