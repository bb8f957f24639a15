"""Every install starts with the retrieval baseline configured: it needs no weights."""

from django.db import migrations


def create_baseline(apps, schema_editor):
    ModelConfig = apps.get_model("generation", "ModelConfig")
    ModelConfig.objects.get_or_create(
        name="retrieval-baseline",
        defaults={"backend": "retrieval", "parameters": {"seed": 0}, "max_attempts": 2},
    )


class Migration(migrations.Migration):
    dependencies = [("generation", "0001_initial")]

    operations = [migrations.RunPython(create_baseline, migrations.RunPython.noop)]
