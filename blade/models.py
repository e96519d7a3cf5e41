"""Tables of the Client Deployment blade (prefixed cd_)."""

from server_manager_stub.db import Base

__all__ = ["Base"]
