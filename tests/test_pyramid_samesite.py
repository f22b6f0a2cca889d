"""``lembro.samesite`` in a Pyramid ini: empty is no SameSite attribute, ``none`` is SameSite=None."""

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.response import Response

SETTINGS = {"lembro.secret": "a long enough test secret", "lembro.interval": "none"}


def cookie_of(settings):
    """The Set-Cookie header of a first visit to an app built from ``settings``."""
    config = Configurator(settings={**SETTINGS, **settings})
    config.include("lembro_wsgi.pyramid")

    def visit(request):
        request.session["n"] = 1
        return Response("ok")

    config.add_route("visit", "/")
    config.add_view(visit, route_name="visit")
    return webtest.TestApp(config.make_wsgi_app()).get("/").headers["Set-Cookie"]


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_samesite_setting_is_no_attribute(empty):
    cookie = cookie_of({"lembro.samesite": empty})
    assert "samesite" not in cookie.lower() and "HttpOnly" in cookie


@pytest.mark.parametrize("spelling", ["none", "None"])
def test_samesite_none_is_still_samesite_none(spelling):
    assert "SameSite=None" in cookie_of({"lembro.samesite": spelling, "lembro.secure": "true"})
    with pytest.raises(ValueError, match="samesite"):
        cookie_of({"lembro.samesite": spelling})  # SameSite=None without Secure: refused, as before


def test_samesite_unset_is_lax():
    assert "SameSite=Lax" in cookie_of({})
