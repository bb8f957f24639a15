"""DICOMweb (PS3.18): QIDO-RS search, WADO-RS / WADO-URI retrieval and STOW-RS storage.

Frames and metadata are served from what the import indexed (``Instance.frame_ranges`` and
``Instance.dicom_json``): no request parses DICOM, and nothing is transcoded. A client asking
for a transfer syntax other than the stored one gets 406 with the stored one named.
"""
