"""The kinds of session backend, one class each, and which one a ``type`` names.

``SessionBackend(type, ...)`` picks the kind itself; build one by name when you know it::

    from lembro_wsgi.backends import LembroBackend, RedisBackend, kind_of

    LembroBackend(store=LembroStore(), timeout=1800)   # in process
    RedisBackend("ext:redis", url="redis://127.0.0.1:6379/0", timeout=1800)
    kind_of("file")                                    # BeakerBackend
"""

from __future__ import annotations

import inspect

from beaker.cache import clsmap
from beaker.ext.redisnm import RedisNamespaceManager

from ..backend import SessionBackend
from .beaker import BeakerBackend
from .lembro import LembroBackend
from .redis import RedisBackend

__all__ = ["BeakerBackend", "LembroBackend", "RedisBackend", "kind_of"]


def kind_of(type: str | None) -> type[SessionBackend]:
    """The backend class for ``type``: lembro's (None or ``'lembro'``), Redis's (Beaker's ``ext:redis`` and
    its kin) or Beaker's for any other; an unknown ``type`` gets Beaker's, which refuses it, named."""
    if type in (None, "lembro"):
        return LembroBackend
    try:
        namespace_class = clsmap[type]
    except Exception:  # noqa: BLE001 - unknown to Beaker: BeakerBackend refuses it, named
        return BeakerBackend
    if inspect.isclass(namespace_class) and issubclass(namespace_class, RedisNamespaceManager):
        return RedisBackend
    return BeakerBackend
