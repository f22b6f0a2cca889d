"""Signed cookies through SessionCookie.read: what a forged or malformed one reads as, and what verifying costs.

``read`` answers ``(id, stale)``: ``(None, False)`` for anything missing, malformed or badly signed, and
``stale`` only for a cookie that an older secret (not the newest) verified. A returning client's cookie
is verified once (remembered), a forged one every time.
"""

import hmac

import pytest

from lembro_wsgi.cookie import SessionCookie, new_session_id

NEWEST = "the newest secret, which signs"
OLDER = "an older secret, still accepted"


def read(cookie, header):
    return cookie.read({"HTTP_COOKIE": header})


@pytest.fixture
def rotating():
    return SessionCookie(secret=[NEWEST, OLDER])


def test_signed_ids_read_back_and_an_older_secret_asks_for_re_signing(rotating):
    sid = new_session_id()
    assert read(rotating, f"lembro.sid={rotating.value(sid)}") == (sid, False)
    older = SessionCookie(secret=OLDER).value(sid)
    assert read(rotating, f"lembro.sid={older}") == (sid, True)
    assert read(rotating, f"lang=en; lembro.sid={older}") == (sid, True)


@pytest.mark.parametrize("shape", [
    "{sid}",                     # unsigned where a signature is required
    "{sid}.",
    "{sid}.{forged}",            # a signature from a secret this cookie does not know
    "{signed}.{signature}",      # more dots than an id and its signature
    "{short}.{signature}",       # not an id before the dot
    "x{signed}",
    ".{signed}",
    "{sid}.{signature}é",
])
@pytest.mark.parametrize("others", ["", "lang=en; "])
def test_a_malformed_or_badly_signed_cookie_reads_as_no_id_and_never_as_stale(rotating, shape, others):
    sid = new_session_id()
    signed = rotating.value(sid)
    header = others + "lembro.sid=" + shape.format(
        sid=sid, signed=signed, signature=signed.split(".")[1], short=sid[:-1],
        forged=SessionCookie(secret="a secret nobody configured here").value(sid).split(".")[1])
    for _ in range(2):  # the same answer when the value comes again
        assert read(rotating, header) == (None, False)


@pytest.fixture
def hmacs(monkeypatch):
    """How many HMACs the cookie computes (the real ``hmac.digest``, counted)."""
    calls = []
    digest = hmac.digest

    def counted(key, message, name):
        calls.append(message)
        return digest(key, message, name)

    monkeypatch.setattr(hmac, "digest", counted)
    return calls


def test_a_returning_clients_cookie_is_verified_once_a_forged_one_every_time(rotating, hmacs):
    sid = new_session_id()
    signed, older = rotating.value(sid), SessionCookie(secret=OLDER).value(sid)
    hmacs.clear()
    assert read(rotating, f"lembro.sid={signed}") == (sid, False)
    assert read(rotating, f"lembro.sid={older}") == (sid, True)
    verified = len(hmacs)
    assert verified == 3  # the newest secret for the first; both for the one only the older secret signed
    for _ in range(5):
        assert read(rotating, f"lembro.sid={signed}") == (sid, False)
        assert read(rotating, f"lembro.sid={older}") == (sid, True)
    assert len(hmacs) == verified
    forged = f"lembro.sid={sid}.{'A' * 43}"
    for attempt in range(1, 4):
        assert read(rotating, forged) == (None, False)
        assert len(hmacs) == verified + 2 * attempt  # each attempt is checked against both secrets again
