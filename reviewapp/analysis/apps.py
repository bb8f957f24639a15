from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    name = "reviewapp.analysis"
    label = "analysis"
