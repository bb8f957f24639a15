from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "reviewapp.generation"
    label = "generation"
