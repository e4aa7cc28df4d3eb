"""The dashboard's vendored front-end files are exactly those their manifest pins (written by
scripts/vendor_dashboard_assets.py from the npm packages): none edited by hand, none added or lost."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[2] / "api" / "dashboard" / "static" / "vendor"


def test_vendored_files_match_their_manifest() -> None:
    manifest = json.loads((VENDOR / "manifest.json").read_text())
    pinned = {
        path: digest for package in manifest["packages"].values() for path, digest in package["files"].items()
    }
    present = {
        str(path.relative_to(VENDOR)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in VENDOR.rglob("*")
        if path.is_file() and path.name != "manifest.json"
    }
    assert present == pinned


def test_every_vendored_package_is_pinned_by_version_and_registry_integrity() -> None:
    manifest = json.loads((VENDOR / "manifest.json").read_text())
    for name, package in manifest["packages"].items():
        assert package["version"], name
        assert package["integrity"].startswith("sha512-"), name
        assert set(package["source"].values()) == set(package["files"]), name
