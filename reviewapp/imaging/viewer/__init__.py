"""The standalone viewer page for the people who manage the archive. Its images come over
DICOMweb (``imaging/dicomweb``); its scripts are ``static/src/viewer/``."""
