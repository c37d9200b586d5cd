"""OSTree objects: typed, frozen values with ``from_bytes``/``to_bytes`` and checksums.

Metadata objects (commit, dirtree, dirmeta) are named by SHA-256 of their normal-form
bytes; content objects by SHA-256 of their framed header plus payload, streamed in chunks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyostree._lazy import lazy_names

if TYPE_CHECKING:
    from pyostree.objects.checksum import (
        is_checksum,
        sha256_hex,
        to_hex,
        to_raw,
        validate_checksum,
    )
    from pyostree.objects.commit import COMMIT_TYPE, Commit
    from pyostree.objects.commitmeta import CommitMeta
    from pyostree.objects.content import (
        CHUNK_SIZE,
        MAX_HEADER_SIZE,
        ArchiveDeflater,
        ContentHasher,
        FileHeader,
        OstreeMeta,
        content_checksum,
        iter_archive,
        iter_inflate,
        parse_archive_header,
        parse_content_header,
        parse_ostreemeta,
    )
    from pyostree.objects._common import MAX_METADATA_SIZE
    from pyostree.objects.dirmeta import DIRMETA_TYPE, DirMeta
    from pyostree.objects.dirtree import (
        DIRTREE_TYPE,
        EMPTY_DIRTREE_CHECKSUM,
        DirEntry,
        DirTree,
        FileEntry,
    )
    from pyostree.objects.names import (
        parse_refspec,
        validate_collection_id,
        validate_filename,
        validate_ref_name,
        validate_remote_name,
    )
    from pyostree.objects.sizes import SizeEntry, parse_sizes, sizes_metadata
    from pyostree.objects.tombstone import Tombstone
    from pyostree.objects.types import ObjectType
    from pyostree.objects.xattrs import Xattrs, canonical_xattrs, validate_xattrs

# Each name loads its module on first use (PEP 562): a tool that needs only checksums
# or names does not pay for the GVariant codec and every object type at start-up.
_WHERE = {
    "ArchiveDeflater": "pyostree.objects.content",
    "CHUNK_SIZE": "pyostree.objects.content",
    "COMMIT_TYPE": "pyostree.objects.commit",
    "Commit": "pyostree.objects.commit",
    "CommitMeta": "pyostree.objects.commitmeta",
    "ContentHasher": "pyostree.objects.content",
    "DIRMETA_TYPE": "pyostree.objects.dirmeta",
    "DIRTREE_TYPE": "pyostree.objects.dirtree",
    "DirEntry": "pyostree.objects.dirtree",
    "DirMeta": "pyostree.objects.dirmeta",
    "DirTree": "pyostree.objects.dirtree",
    "EMPTY_DIRTREE_CHECKSUM": "pyostree.objects.dirtree",
    "FileEntry": "pyostree.objects.dirtree",
    "FileHeader": "pyostree.objects.content",
    "MAX_HEADER_SIZE": "pyostree.objects.content",
    "MAX_METADATA_SIZE": "pyostree.objects._common",
    "ObjectType": "pyostree.objects.types",
    "OstreeMeta": "pyostree.objects.content",
    "SizeEntry": "pyostree.objects.sizes",
    "Tombstone": "pyostree.objects.tombstone",
    "Xattrs": "pyostree.objects.xattrs",
    "canonical_xattrs": "pyostree.objects.xattrs",
    "content_checksum": "pyostree.objects.content",
    "is_checksum": "pyostree.objects.checksum",
    "iter_archive": "pyostree.objects.content",
    "iter_inflate": "pyostree.objects.content",
    "parse_archive_header": "pyostree.objects.content",
    "parse_content_header": "pyostree.objects.content",
    "parse_ostreemeta": "pyostree.objects.content",
    "parse_refspec": "pyostree.objects.names",
    "parse_sizes": "pyostree.objects.sizes",
    "sha256_hex": "pyostree.objects.checksum",
    "sizes_metadata": "pyostree.objects.sizes",
    "to_hex": "pyostree.objects.checksum",
    "to_raw": "pyostree.objects.checksum",
    "validate_checksum": "pyostree.objects.checksum",
    "validate_collection_id": "pyostree.objects.names",
    "validate_filename": "pyostree.objects.names",
    "validate_ref_name": "pyostree.objects.names",
    "validate_remote_name": "pyostree.objects.names",
    "validate_xattrs": "pyostree.objects.xattrs",
}


__getattr__, __dir__ = lazy_names(globals(), _WHERE)

__all__ = [
    "CHUNK_SIZE",
    "COMMIT_TYPE",
    "DIRMETA_TYPE",
    "DIRTREE_TYPE",
    "EMPTY_DIRTREE_CHECKSUM",
    "MAX_HEADER_SIZE",
    "MAX_METADATA_SIZE",
    "ArchiveDeflater",
    "Commit",
    "CommitMeta",
    "ContentHasher",
    "DirEntry",
    "DirMeta",
    "DirTree",
    "FileEntry",
    "FileHeader",
    "ObjectType",
    "OstreeMeta",
    "SizeEntry",
    "Tombstone",
    "Xattrs",
    "canonical_xattrs",
    "content_checksum",
    "is_checksum",
    "iter_archive",
    "iter_inflate",
    "parse_archive_header",
    "parse_content_header",
    "parse_ostreemeta",
    "parse_refspec",
    "parse_sizes",
    "sha256_hex",
    "sizes_metadata",
    "to_hex",
    "to_raw",
    "validate_checksum",
    "validate_collection_id",
    "validate_filename",
    "validate_ref_name",
    "validate_remote_name",
    "validate_xattrs",
]
