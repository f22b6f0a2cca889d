from setuptools import find_packages, setup

with open("README.md", encoding="utf-8") as readme:
    long_description = readme.read()

setup(
    name="lembro_wsgi",
    version="0.1.0",
    description="Production-usable in-memory sessions for WSGI apps: purged, size-capped, one process.",
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="MIT",
    author="The lembro_wsgi authors",
    url="https://pypi.org/project/lembro_wsgi/",
    project_urls={
        "Documentation": "https://pypi.org/project/lembro_wsgi/",
        "Changelog": "https://pypi.org/project/lembro_wsgi/#history",
        "Origin (express-lembro)": "https://www.npmjs.com/package/express-lembro",
    },
    packages=find_packages(include=["lembro_wsgi", "lembro_wsgi.*"]),
    package_data={"lembro_wsgi": ["py.typed"]},
    python_requires=">=3.11",
    # WebOb imports the cgi module, gone from the standard library in 3.13; only WebOb 1.8.9 and later pull
    # in its legacy-cgi copy themselves.
    install_requires=["WebOb>=1.8", "Beaker>=1.12", "legacy-cgi>=2.6; python_version>='3.13'"],
    entry_points={
        "beaker.backends": ["lembro = lembro_wsgi.namespace:LembroNamespaceManager"],
    },
    extras_require={
        "pyramid": ["pyramid>=2"],
        "bottle": ["bottle>=0.12"],
        "redis": ["redis>=4"],
        "flask": ["flask>=3.1"],
        "django": ["django>=5.2"],
        "prometheus": ["prometheus_client>=0.16"],
        # mutmut's configuration and results format changed within 3.x: pinned to the version tools/mutation.py reads.
        "mutation": ["mutmut==3.8.1"],
        "bench": ["cachetools", "cachelib", "flask>=3.1", "Flask-Session>=0.8", "django>=5.2"],
        "examples": ["waitress", "pyramid>=2", "pyramid_beaker", "bottle>=0.12", "flask>=3.1", "django>=5.2"],
        "test": [
            "pytest>=7", "WebTest>=3", "hypothesis>=6", "ruff", "pyramid>=2", "pyramid_beaker", "waitress",
            "bottle>=0.12", "redis>=4", "flask>=3.1", "prometheus_client>=0.16", "mypy", "gunicorn",
            "django>=5.2",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.13",
        "Framework :: Pyramid",
        "Framework :: Bottle",
        "Framework :: Flask",
        "Typing :: Typed",
        "License :: OSI Approved :: MIT License",
        "Topic :: Internet :: WWW/HTTP :: WSGI :: Middleware",
    ],
)
