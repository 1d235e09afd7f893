"""BentoML entry point for mlkit (thin: the logic is `mlkit.serving`, generated from nbs/07_serving.ipynb).

    bentoml serve service:MlkitService --working-dir bentos      # or: mlkit serve [--alias production | --model TAG]

The model is `MLKIT_MODEL` (a tag), else `MLKIT_ALIAS`, else `model_tag.txt` beside this file (written by
`mlkit build`), else the `production` alias.
"""
from pathlib import Path
from mlkit.serving import make_service

MlkitService = make_service(entry_dir=Path(__file__).parent)
