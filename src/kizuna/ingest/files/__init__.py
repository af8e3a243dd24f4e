"""Batch file import: CSV (UTF-8, UTF-8 BOM, Shift_JIS/CP932), JSONL and Parquet.

``import_file(db, workspace, kind, path)`` streams a file of customers, orders,
events, products or consents into the store in chunks, one transaction each,
rejecting bad rows to a reject file. The column-mapping format is documented in
:mod:`kizuna.ingest.files._mapping`.
"""

from kizuna.ingest.files._mapping import BUILTIN, FIELDS, KINDS, MappingSpec, load_mapping
from kizuna.ingest.files._readers import FORMATS, detect_encoding
from kizuna.ingest.files._runner import ImportSummary, import_file

__all__ = [
    "BUILTIN",
    "FIELDS",
    "FORMATS",
    "KINDS",
    "ImportSummary",
    "MappingSpec",
    "detect_encoding",
    "import_file",
    "load_mapping",
]
