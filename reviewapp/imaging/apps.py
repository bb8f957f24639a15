from django.apps import AppConfig


class ImagingConfig(AppConfig):
    name = "reviewapp.imaging"
    label = "imaging"
