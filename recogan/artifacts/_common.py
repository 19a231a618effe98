"""Names shared by writing and reading bundles: format constants, the manifest checksum."""

from __future__ import annotations

import json
import re
from pathlib import Path

from recogan import __version__, _fs

FORMAT = "recogan-bundle"
FORMAT_VERSION = 2
#: Format of a bundle carrying catalogue changes (recogan.catalog): an earlier recogan, which
#: would ignore the withdrawn products, refuses it instead.
CATALOG_FORMAT_VERSION = 3
#: Format versions this recogan reads (1: flat layout without a manifest checksum).
READABLE_VERSIONS = (1, 2, 3)
MANIFEST = "manifest.json"
CHECKSUM_FIELD = "manifest_sha256"
#: Version directories kept in a bundle: the current one and the one it replaced.
KEEP_VERSIONS = 2
#: Attempts of a load that keeps finding the bundle re-published under it.
LOAD_ATTEMPTS = 50

_VERSION = re.compile(r"^v-\d{8}T\d{12}-[0-9a-f]{8}$")
_MANIFEST_TMP = re.compile(r"^\.manifest\.json\.tmp-\d+-[0-9a-f]+$")


class BundleError(ValueError):
    """A bundle is missing, incomplete, altered or of an unsupported format."""


class _Changed(Exception):
    """The bundle was re-published while it was being read: start over."""


def _version() -> str:
    return __version__


def manifest_digest(manifest: dict) -> str:
    """The checksum of a manifest: sha256 of its canonical JSON without the checksum field."""
    body = {k: v for k, v in manifest.items() if k != CHECKSUM_FIELD}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return _fs.sha256_bytes(text.encode())


def is_bundle(path: str | Path) -> bool:
    """Whether ``path`` holds a recogan bundle (its manifest names our format; files are not
    verified, so a damaged bundle still counts as one: a save may replace it)."""
    try:
        m = json.loads((Path(path) / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(m, dict) and m.get("format") == FORMAT


def is_leftover(name: str) -> bool:
    """Entries inside a bundle directory that a save may remove: interrupted manifest writes."""
    return bool(_MANIFEST_TMP.match(name))
