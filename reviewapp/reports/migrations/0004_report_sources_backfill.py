"""Give every existing report its source.

Originals go to the one original source, readers' edits to the one edited source, and each AI
report to the source of the model configuration whose generation run wrote it. An AI report
with no run (none is written that way) keeps no source rather than a guessed one.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    ReportSource = apps.get_model("reports", "ReportSource")
    Report = apps.get_model("reports", "Report")
    ModelConfig = apps.get_model("generation", "ModelConfig")
    GenerationRun = apps.get_model("generation", "GenerationRun")

    original, _ = ReportSource.objects.get_or_create(kind="original")
    edited, _ = ReportSource.objects.get_or_create(kind="edited")
    Report.objects.filter(kind="original", source__isnull=True).update(source=original)
    Report.objects.filter(kind="edited", source__isnull=True).update(source=edited)
    for config in ModelConfig.objects.all():
        source, _ = ReportSource.objects.get_or_create(kind="model", model_config=config)
        report_ids = GenerationRun.objects.filter(
            job__model_config=config, report__isnull=False
        ).values("report_id")
        Report.objects.filter(id__in=report_ids, source__isnull=True).update(source=source)


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0003_report_sources"),
        ("generation", "0002_retrieval_baseline"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
