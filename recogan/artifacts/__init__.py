"""Model bundles on disk: versioned, published atomically, verified on load, never unpickled.

Layout::

    NAME/
      manifest.json        format version, recogan version, created-at, model class + config,
                           dataset fingerprint, the version directory it describes, sha256 +
                           size of every file there, and its own checksum (``manifest_sha256``)
      v-<time>-<id>/       one immutable version of the bundle:
        users.parquet      external user ids, row i = index i
        items.parquet      external item ids
        catalog.parquet    item attributes (title, category, price) when the data had a catalog
        arrays/*.npy       numpy state (seen-items CSR, popularity prior, model arrays);
                           read with allow_pickle=False
        weights.pt         torch state dicts, read with torch.load(weights_only=True)
        ...                files a model writes itself (e.g. an index), hashed like the rest
      v-<older>/           the previous version, kept for readers that are still loading it

**Publishing.** A save writes a complete new bundle into a temporary sibling
``.NAME.tmp-<pid>-<id>/`` (locked while it is written) and fsyncs it. Under the parent
directory's publish lock it then either moves the new version directory into ``NAME/`` and
switches ``manifest.json`` with one atomic ``os.replace`` (the manifest is the pointer), or,
when ``NAME`` is absent or not a versioned bundle, renames the whole temporary directory into
place (moving what was there aside first). A crash at any point leaves the old or the new bundle
loadable: a swap interrupted between its two renames is completed or undone by the next load
or save (:func:`recover_bundle`), and leftovers of dead writers (``.NAME.tmp-*``, unused
versions) are removed by the next save. A save refuses to replace a path that holds anything
but a bundle unless ``force=True``.

**Loading.** The manifest is read once, its checksum checked, and the version directory it
names is share-locked (so no save removes it meanwhile); every file is read once into memory,
its size and sha256 checked against the manifest, and parsed from those bytes. A load that
races a re-publish therefore sees one whole bundle, never a mix: if the version it started on
disappears it starts over on the new manifest. Missing, truncated, extra or altered files, an
edited manifest, pickled payloads and unsupported formats are refused with a
:class:`BundleError` naming the file. Bundles written by earlier recogan versions (format 1:
the files directly in ``NAME/``, no manifest checksum) still load, with a warning to re-save.
"""

from recogan._fs import OutputDirError, sha256_file
from recogan.artifacts._common import (
    CHECKSUM_FIELD,
    FORMAT,
    FORMAT_VERSION,
    KEEP_VERSIONS,
    MANIFEST,
    READABLE_VERSIONS,
    BundleError,
    is_bundle,
    is_leftover,
    manifest_digest,
)
from recogan.artifacts._load import Bundle, files_dir, load_model, open_bundle, read_manifest
from recogan.artifacts._save import recover_bundle, save_model

__all__ = [
    "CHECKSUM_FIELD",
    "FORMAT",
    "FORMAT_VERSION",
    "KEEP_VERSIONS",
    "MANIFEST",
    "READABLE_VERSIONS",
    "Bundle",
    "BundleError",
    "OutputDirError",
    "files_dir",
    "is_bundle",
    "is_leftover",
    "load_model",
    "manifest_digest",
    "open_bundle",
    "read_manifest",
    "recover_bundle",
    "save_model",
    "sha256_file",
]
