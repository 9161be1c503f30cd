"""The on-premises Active Directory agent for JIT admin access (see docs/onprem-agent.md).

`agent.protocol` is the standard-library-only wire format shared with the function app; `agent.sealing` seals
one-time passwords for an agent (needs `cryptography`). The rest (LDAP, Azure Storage) runs on the agent host only.
"""

__version__ = "0.1.0"
