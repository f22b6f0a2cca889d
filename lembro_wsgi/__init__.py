"""lembro_wsgi: in-memory sessions for WSGI apps that purge expired data and stay under a size cap.

    from lembro_wsgi import LembroStore
    store = LembroStore(interval=60, max_size='4M')
"""

from .options import parse_size
from .store import LembroStore, SessionTooLarge

__all__ = ["LembroStore", "SessionTooLarge", "parse_size"]
__version__ = "0.1.0"
