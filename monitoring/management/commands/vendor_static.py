"""Copy plotly.js from the installed plotly package into static/vendor (version-matched, no CDN)."""

import shutil
from pathlib import Path

import plotly
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Copy plotly.min.js from the installed plotly package into static/vendor/."

    def handle(self, *args, **options):
        source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        target = Path(settings.BASE_DIR) / "static" / "vendor" / "plotly.min.js"
        if not target.exists() or target.stat().st_size != source.stat().st_size:
            shutil.copyfile(source, target)
        self.stdout.write(f"plotly.js from plotly {plotly.__version__} -> {target}")
