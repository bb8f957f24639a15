"""Getting a file into the archive: every path a DICOM file takes before it is stored.

Uploads, zip members, STOW-RS parts, ``import_dicom`` and the DICOM receiver (``dimse.py``) all
go through ``services.py`` (import batches, quarantine decisions), which takes the same steps
for each file: size limits (``upload_limits.py``), archives unpacked safely (``archives.py``),
the bytes scanned before pydicom parses them (``dicom_safety.py``), de-identification
(``deid.py``, descriptors cleaned by ``descriptors.py``), and the frame index that lets
DICOMweb serve frames without parsing (``dicom_index.py``).

Research datasets of PNG/JPEG images (``datasets.py``) are read by layout
(``dataset_layouts.py``), built into DICOM objects (``raster.py``) and handed to the same
steps (``services.import_batch_run_built``), which write their rows per chunk.
"""
