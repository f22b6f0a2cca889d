"""RFC 6265 5.2 details of reading the Cookie header, through the middleware: only spaces and tabs are
whitespace around a value; other control or Unicode spaces make the value no id, as they do for browsers."""

import pytest

from lembro_wsgi import LembroMiddleware
from tests.wsgi_apps import issued_cookies, owner_app, owner_seen

NAME = "lembro.sid"
SECRET = "a secret for the cookie header tests"

APPS = {secret: LembroMiddleware(owner_app, interval=None, secret=secret) for secret in (None, SECRET)}
ISSUED = {secret: issued_cookies(app, count=1) for secret, app in APPS.items()}


@pytest.mark.parametrize("secret", [None, SECRET])
@pytest.mark.parametrize("space", ["\x0b", "\x0c", "\r", "\n", "\x1f", "\x85", "\xa0", "\u3000"])
@pytest.mark.parametrize("shape", ["{name}={id}{space}; lang=en", "lang=en; {name}={space}{id}",
                                   '{name}="{id}"{space}; lang=en', "{name}={id}{space}"])
def test_only_spaces_and_tabs_are_stripped_around_our_value(secret, space, shape):
    assert owner_seen(APPS[secret], shape.format(name=NAME, id=ISSUED[secret][0], space=space)) == "-"


@pytest.mark.parametrize("secret", [None, SECRET])
@pytest.mark.parametrize("shape", ["{name}={id} \t; lang=en", "lang=en; {name}=\t {id}", 'lang=en; {name}= "{id}"\t'])
def test_spaces_and_tabs_around_our_value_are_stripped(secret, shape):
    assert owner_seen(APPS[secret], shape.format(name=NAME, id=ISSUED[secret][0])) == "0"


@pytest.mark.parametrize("secret", [None, SECRET])
@pytest.mark.parametrize("where", ["before", "after", "both"])
def test_an_id_padded_with_whitespace_up_to_the_256_character_cap_is_read(secret, where):
    """Whitespace around our value is stripped however much there is, up to the reader's cap of 256 characters
    of value (a signed id is 87): beyond it the value is not ours whatever it holds."""
    cookie = ISSUED[secret][0]
    pad = " \t" * 256
    for length, expected in ((256, "0"), (257, "-")):
        room = length - len(cookie)
        before = {"before": room, "after": 0, "both": room // 2}[where]
        value = pad[:before] + cookie + pad[:room - before]
        assert len(value) == length
        assert owner_seen(APPS[secret], f"lang=en; {NAME}={value}; theme=dark") == expected
