"""Settings for Django's own session tests run on lembro (tests/test_django_upstream.py).

``LEMBRO_UPSTREAM_SESSIONS`` (JSON) replaces ``LEMBRO_SESSIONS``: the same tests run on another backend.
"""

import json
import os

SECRET_KEY = "django-upstream-session-tests-on-lembro"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
SESSION_ENGINE = "lembro_wsgi.django"
LEMBRO_SESSIONS = json.loads(os.environ.get("LEMBRO_UPSTREAM_SESSIONS", '{"max_size": "64M", "interval": null}'))
