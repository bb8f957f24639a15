"""DICOMweb (PS3.18): QIDO-RS search, WADO-RS / WADO-URI retrieval and STOW-RS storage.

Self-contained: routes (``urls.py``, mounted at /dicomweb/), interfaces (``views.py``), reads
with the permission check built in (``selectors.py``), what a reader receives of a header
(``reader_view.py``), search (``qido.py``), frame bodies (``frames.py``), storage (``stow.py``,
through the archive's import service), the media types (``media.py``, ``multipart.py``),
lossless transcoding of whole instances (``transcode.py``) and CORS (``cors.py``). What each
resource offers: docs/dicomweb.md.

Frames and metadata are served from what the import indexed (``Instance.frame_ranges`` and
``Instance.dicom_json``): no frame or metadata request parses DICOM, and frames are never
transcoded. Whole instances are decoded into a native syntax only when the request asks.
"""
