"""Bringing existing datasets in: a local folder of media files and its labels (`chfen import`).

- `chfen.ingest.labels`: the labels files (one label per file, one row per rating), label maps,
  and the file-name presets (RAVDESS, CREMA-D);
- `chfen.ingest.local`: the import itself (check everything, then write).
"""

from chfen.ingest.labels import PRESETS, Columns, LabelsError
from chfen.ingest.local import DatasetImportError, ImportReport, import_folder, imported_votes

__all__ = [
    "PRESETS",
    "Columns",
    "DatasetImportError",
    "ImportReport",
    "LabelsError",
    "import_folder",
    "imported_votes",
]
