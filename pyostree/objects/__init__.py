"""OSTree objects: typed, frozen values with ``from_bytes``/``to_bytes`` and checksums.

Metadata objects (commit, dirtree, dirmeta) are named by SHA-256 of their normal-form
bytes; content objects by SHA-256 of their framed header plus payload, streamed in chunks.
"""

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
