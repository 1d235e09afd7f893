"""The vanilla BentoML baseline of the serving benchmark: the same model as a new user would serve it with BentoML.

One `@bentoml.service` class with one `@bentoml.api` method taking the rows of `{"rows": [...]}`, a pandas DataFrame
and `Predictor.predict` (eager torch), BentoML's defaults otherwise (access log, tracing middleware, metrics, no fast
path, no batching, no prediction log). The model folder is `VANILLA_MODEL`, the workers `VANILLA_WORKERS` (default 2).

    VANILLA_MODEL=MODEL_DIR .venv/bin/bentoml serve vanilla_bento:Vanilla --working-dir bench --host 127.0.0.1 --port 8000
"""
import json, os
from pathlib import Path
import bentoml
import pandas as pd

@bentoml.service(workers=int(os.environ.get('VANILLA_WORKERS', '2')))
class Vanilla:
    def __init__(self):
        import torch
        from mlkit.model import Predictor
        torch.set_num_threads(1)                     # one thread per worker, as the mlkit service
        folder = Path(os.environ['VANILLA_MODEL'])
        self.model = Predictor.load(folder)
        self.columns = list(json.loads((folder/'schema.json').read_text())['columns'])

    @bentoml.api
    def predict(self, rows: list[dict]) -> dict:
        out = self.model.predict(pd.DataFrame.from_records(rows, columns=self.columns))
        return dict(predictions=[dict(label=l, score=s) for l, s in zip(out['label'].tolist(), out['score'].tolist())])
