"""Fetch the dashboard's front-end libraries from the npm registry into api/dashboard/static/vendor/.

The dashboard has no build step: it serves these files as the packages publish them. Each package is
pinned by version and by the tarball's registry ``integrity`` (SHA-512); the manifest written beside
the files records that and every file's SHA-256, and tests/browser/test_vendored_assets.py fails if
a vendored file no longer matches it (edited by hand, or half-updated). To upgrade, change VERSIONS,
drop the package's ``integrity`` from the manifest, and rerun; ``--check`` re-downloads and compares
without writing (it needs the registry; the test does not).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[1] / "api" / "dashboard" / "static" / "vendor"
MANIFEST = VENDOR / "manifest.json"


@dataclass(frozen=True)
class VendoredPackage:
    name: str
    version: str
    files: tuple[str, ...]  # paths inside the package tarball (below package/)


PACKAGES = (VendoredPackage("uplot", "1.6.32", ("dist/uPlot.iife.min.js", "dist/uPlot.min.css", "LICENSE")),)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def packed(package: VendoredPackage, folder: Path) -> tuple[Path, str]:
    """The package's tarball from the registry (``npm pack``), and its integrity string."""
    answer = subprocess.run(
        ["npm", "pack", f"{package.name}@{package.version}", "--json", "--pack-destination", str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )
    described = json.loads(answer.stdout)[0]
    return folder / described["filename"], described["integrity"]


def tarball_integrity(tarball: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()


def extracted(package: VendoredPackage, pinned: str | None) -> tuple[dict[str, bytes], str]:
    with tempfile.TemporaryDirectory() as folder:
        tarball, integrity = packed(package, Path(folder))
        if tarball_integrity(tarball) != integrity:
            sys.exit(f"{package.name}: the tarball does not match the registry's integrity {integrity}")
        if pinned is not None and integrity != pinned:
            sys.exit(
                f"{package.name}@{package.version}: integrity {integrity} differs from the pinned {pinned}"
            )
        with tarfile.open(tarball) as archive:
            files = {}
            for path in package.files:
                member = archive.extractfile(f"package/{path}")
                if member is None:
                    sys.exit(f"{package.name}: {path} is not a file in the package")
                files[path] = member.read()
    return files, integrity


def vendored_path(package: VendoredPackage, path: str) -> str:
    return f"{package.name}/{Path(path).name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the registry, write nothing")
    arguments = parser.parse_args()
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {"packages": {}}
    written: dict[str, object] = {}
    for package in PACKAGES:
        pinned = manifest["packages"].get(package.name, {})
        same_version = pinned.get("version") == package.version
        files, integrity = extracted(package, pinned.get("integrity") if same_version else None)
        entries = {vendored_path(package, path): sha256(data) for path, data in files.items()}
        if arguments.check:
            if pinned.get("files") != entries:
                sys.exit(f"{package.name}: the vendored files differ from {package.name}@{package.version}")
            continue
        for path, data in files.items():
            target = VENDOR / vendored_path(package, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        written[package.name] = {
            "version": package.version,
            "integrity": integrity,
            "source": {path: vendored_path(package, path) for path in package.files},
            "files": entries,
        }
    if not arguments.check:
        MANIFEST.write_text(json.dumps({"packages": written}, indent=2, sort_keys=True) + "\n")
    print("vendored files match their packages" if arguments.check else f"wrote {MANIFEST}")


if __name__ == "__main__":
    main()
