"""Bringing existing datasets in: a local folder of media files and its labels (`chfen import`).

- `chfen.ingest.labels`: the labels files (one label per file, one row per rating), label maps,
  and the file-name presets (RAVDESS, CREMA-D);
- `chfen.ingest.local`: the import itself (check everything, then write); `import_source`
  for a `sources:` entry with a `path` (the crawl flow runs it on every crawl).
"""

from chfen.ingest.labels import PRESETS, Columns, LabelsError
from chfen.ingest.local import (
    DatasetImportError,
    ImportReport,
    import_folder,
    import_source,
    imported_votes,
)

__all__ = [
    "PRESETS",
    "Columns",
    "DatasetImportError",
    "ImportReport",
    "LabelsError",
    "import_folder",
    "import_source",
    "imported_votes",
]
