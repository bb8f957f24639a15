from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "reviewapp.metrics"
    label = "metrics"
