"""in-memory sessions for WSGI apps that purge expired data and stay under a size cap.

    from lembro_wsgi import LembroMiddleware
    app = LembroMiddleware(app, interval=60, max_size='1M')   # environ['lembro.session']
"""

from .backend import BackendFull, BackendUnavailable
from .factory import SessionFactory
from .middleware import LembroMiddleware
from .namespace import LembroNamespaceManager
from .options import parse_size
from .registry import get_store, reset_stores, store_for
from .session import Session
from .stats import StatsApp
from .store import LembroStore, SessionTooLarge

__all__ = [
    "BackendFull",
    "BackendUnavailable",
    "LembroMiddleware",
    "LembroNamespaceManager",
    "LembroStore",
    "Session",
    "SessionFactory",
    "SessionTooLarge",
    "StatsApp",
    "get_store",
    "parse_size",
    "reset_stores",
    "store_for",
]
__version__ = "0.1.0"
