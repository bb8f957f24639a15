"""DICOMweb (PS3.18): QIDO-RS search, WADO-RS / WADO-URI retrieval and STOW-RS storage.

Self-contained: routes (``urls.py``, mounted at /dicomweb/), interfaces (``views.py``), reads
with the permission check built in (``selectors.py``), what a reader receives of a header
(``reader_view.py``), search (``qido.py``), frame bodies (``frames.py``), storage (``stow.py``,
through the archive's import service) and the media types (``media.py``, ``multipart.py``).

Frames and metadata are served from what the import indexed (``Instance.frame_ranges`` and
``Instance.dicom_json``): no request parses DICOM, and nothing is transcoded. A client asking
for a transfer syntax other than the stored one gets 406 with the stored one named.
"""
