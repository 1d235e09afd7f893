"""The baseline server for the serving benchmark: the same model behind one Starlette route, nothing else.

POST /predict {"rows": [record, ...]} -> json parse -> pandas DataFrame -> Predictor.predict -> JSON
(no validation, batching, logging, metrics or tracing: the floor of what any Python service of this model costs).
`--path records` scores the parsed records with `predict_records` of the scorer the mlkit service uses (ONNX
Runtime when the model carries a parity-checked ONNX file, `mlkit.optimize.load_scorer`) instead (no DataFrame): the
same model path as the mlkit service, so the comparison isolates the framework.

    .venv/bin/python bench/minimal_app.py --model MODEL_DIR --port 8000 [--path pandas|records] [--workers N]
"""
import argparse, json, os
from pathlib import Path

def make_app(model_dir, path='pandas'):
    import pandas as pd, torch
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    from mlkit.model import Predictor
    torch.set_num_threads(int(os.environ.get('MLKIT_TORCH_THREADS', '1')))   # as the mlkit service
    pred = Predictor.load(model_dir)
    columns = list(json.loads((Path(model_dir)/'schema.json').read_text())['columns'])

    records = path == 'records' and hasattr(pred, 'predict_records')
    if records:     # the scorer the mlkit service uses: ONNX Runtime when the model carries a parity-checked ONNX file
        try:
            from mlkit.optimize import load_scorer
            pred = load_scorer(model_dir)
        except ImportError: pass

    async def predict(request):
        body = json.loads(await request.body())
        if records: out = pred.predict_records(body['rows'])
        else: out = pred.predict(pd.DataFrame.from_records(body['rows'], columns=columns))
        preds = [dict(label=l, score=s) for l, s in zip(out['label'].tolist(), out['score'].tolist())]
        return Response(json.dumps(dict(predictions=preds)), media_type='application/json')

    async def ready(request): return Response('ok')
    return Starlette(routes=[Route('/predict', predict, methods=['POST']), Route('/readyz', ready)])

def app_from_env():
    "The app of `MINIMAL_MODEL` and `MINIMAL_PATH`: what each of uvicorn's worker processes builds (`--workers` above 1)."
    return make_app(os.environ['MINIMAL_MODEL'], os.environ.get('MINIMAL_PATH', 'pandas'))

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--model', required=True, help='model folder (weights, net.json, transform.json, schema.json)')
    ap.add_argument('--port', type=int, default=8000)
    ap.add_argument('--path', choices=['pandas', 'records'], default='pandas', help='model path: DataFrame + predict, or predict_records')
    ap.add_argument('--workers', type=int, default=1, help='uvicorn worker processes (each loads the model)')
    a = ap.parse_args()
    import uvicorn
    if a.workers == 1: uvicorn.run(make_app(a.model, a.path), host='127.0.0.1', port=a.port, log_level='warning', access_log=False)
    else:     # uvicorn's workers import the app by name: this folder on their path, the model in their environment
        os.environ.update(MINIMAL_MODEL=str(a.model), MINIMAL_PATH=a.path,
                          PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parent), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep))
        uvicorn.run('minimal_app:app_from_env', factory=True, workers=a.workers, host='127.0.0.1', port=a.port, log_level='warning', access_log=False)
