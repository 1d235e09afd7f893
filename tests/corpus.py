"""The test corpus: small, deterministic tables (no network) that exercise mlkit's data discovery, tasks and gates.

`TABLES` maps a name to a `Table` spec; `load(name)` builds the frame, `write_table(name, folder)` writes it as CSV or
Parquet. Five tables come from scikit-learn's bundled data sets, the rest are generated with numpy: every generated
table has a learnable signal (the label depends on a few features plus noise), and between them they cover missing
values, duplicate rows, a constant column, ID columns (integer and string), free text, ISO dates, boolean features and
a boolean label, string and numeric labels, 2/3/10 classes, regression, a sensitive attribute with a small group, and
sizes from 150 to 100,000 rows.

    python tests/corpus.py [--tables a,b] [--max-rows N]     # self-check: builds each table, compares a
                                                               # HistGradientBoosting model with the trivial baseline
"""
from __future__ import annotations
import string
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

__all__ = ['Table', 'TABLES', 'load', 'write_table', 'self_check']

@dataclass
class Table:
    "One corpus table: its target, sensitive columns, the task mlkit should infer and a builder `make(n_rows, seed)`."
    name: str
    target: str
    sensitive: list = field(default_factory=list)
    task: str = 'binary'                    # expected task: 'binary' | 'multiclass' | 'regression'
    make: Callable[[int|None, int], pd.DataFrame] = None
    note: str = ''
    default_rows: int|None = None           # None: the whole bundled data set
    n_classes: int|None = None              # expected number of classes (None for regression)

# ---------------------------------------------------------------------------------------------------------------
# helpers

def _subsample(df: pd.DataFrame, n_rows, seed) -> pd.DataFrame:
    "The first `n_rows` of a seeded shuffle (all rows, in their order, when `n_rows` is None or not smaller)."
    if n_rows is None or n_rows >= len(df): return df.reset_index(drop=True)
    return df.sample(n=n_rows, random_state=seed).reset_index(drop=True)

def _n(n_rows, default): return int(default if n_rows is None else n_rows)

def _sigmoid(z): return 1 / (1 + np.exp(-z))

def _with_duplicates(df: pd.DataFrame, share: float, rng) -> pd.DataFrame:
    "Replace `share` of the rows with exact copies of other rows (same total size), then shuffle."
    n = len(df)
    n_dup = int(round(n * share))
    if n_dup == 0 or n - n_dup < 1: return df
    base = df.iloc[:n - n_dup]
    dups = base.iloc[rng.integers(0, len(base), n_dup)]
    out = pd.concat([base, dups], ignore_index=True)
    return out.iloc[rng.permutation(len(out))].reset_index(drop=True)

def _punch(x: np.ndarray, share: float, rng) -> np.ndarray:
    "A float copy of `x` with `share` of its values (chosen at random) set to NaN."
    x = x.astype(float).copy()
    x[rng.random(len(x)) < share] = np.nan
    return x

def _dates(rng, n, start='2023-01-01', days=730) -> pd.DatetimeIndex:
    return pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, days, n), unit='D')

def _class_draw(scores: np.ndarray, rng, noise=1.0) -> np.ndarray:
    "Argmax of per-class scores plus Gumbel noise: a softmax draw with temperature `noise`."
    return np.argmax(scores + noise * rng.gumbel(size=scores.shape), axis=1)

_FIRST = ['Ada', 'Ben', 'Chloe', 'Daan', 'Eva', 'Finn', 'Grace', 'Hugo', 'Iris', 'Jens', 'Kim', 'Lars', 'Mia', 'Noah',
          'Olga', 'Pim', 'Quinn', 'Rosa', 'Sem', 'Tess', 'Umar', 'Vera', 'Wout', 'Xena', 'Yara', 'Zoe']
_LAST = ['Jansen', 'de Vries', 'Bakker', 'Visser', 'Smit', 'Meijer', 'Mulder', 'Bos', 'Vos', 'Peters', 'Hendriks',
         'Dekker', 'Brouwer', 'Dijkstra', 'Kok', 'Jacobs', 'Vermeulen', 'Willems', 'Schouten', 'Hoekstra']

def _names(rng, n) -> list:
    "`n` distinct person-like names ('Eva Visser 0417')."
    ids = rng.permutation(10_000)[:n] if n <= 10_000 else rng.permutation(n * 10)[:n]
    return [f"{_FIRST[rng.integers(len(_FIRST))]} {_LAST[rng.integers(len(_LAST))]} {i:04d}" for i in ids]

_STREETS = ['Kerkstraat', 'Dorpsstraat', 'Schoolstraat', 'Molenweg', 'Stationsweg', 'Julianastraat', 'Beatrixlaan',
            'Nieuwstraat', 'Parkweg', 'Lindelaan']

_TOPIC_WORDS = {
    'billing': ['invoice', 'charged twice', 'refund', 'payment', 'credit card', 'subscription fee', 'VAT number', 'receipt'],
    'technical': ['error message', 'crashes', 'timeout', 'cannot connect', 'blank screen', 'API returns 500', 'sync fails', 'slow'],
    'account': ['password reset', 'login', 'two-factor code', 'change my email', 'delete my account', 'username', 'locked out', 'profile'],
}
_FILLER = ['yesterday', 'this morning', 'since the last update', 'on my laptop', 'on the mobile app', 'for our whole team',
           'again', 'after I tried twice', 'while travelling', 'during the demo', 'when I open the dashboard',
           'which is urgent', 'and nobody answered my previous mail', 'please advise', 'thanks in advance']
_OPENERS = ['Hello,', 'Hi team,', 'Dear support,', 'Good afternoon,', 'Hey,', 'To whom it may concern,', '']

def _ticket_text(rng, topic: str, on_topic: bool) -> str:
    "A long, mostly unique sentence; it names a keyword of `topic` when `on_topic`, else of a random topic."
    t = topic if on_topic else list(_TOPIC_WORDS)[rng.integers(3)]
    words = _TOPIC_WORDS[t]
    fill = rng.choice(_FILLER, size=3, replace=False)
    ref = ''.join(rng.choice(list(string.ascii_uppercase + string.digits), 6))
    return (f"{_OPENERS[rng.integers(len(_OPENERS))]} I have a problem with {words[rng.integers(len(words))]} {fill[0]}; "
            f"it happened {fill[1]} and {fill[2]}. My reference is {ref} and I have been a customer for "
            f"{rng.integers(1, 15)} years.").strip()

# ---------------------------------------------------------------------------------------------------------------
# scikit-learn's bundled data sets (read from the installed package: no network)

def _sk(loader, target_name: str, string_labels: bool):
    def make(n_rows=None, seed=0) -> pd.DataFrame:
        b = loader(as_frame=True)
        df = b.frame.copy()
        if 'target' in df.columns and target_name != 'target': df = df.rename(columns={'target': target_name})
        if string_labels: df[target_name] = np.asarray(b.target_names)[df[target_name].to_numpy()]
        df.columns = [str(c).replace(' ', '_').replace('(', '').replace(')', '') for c in df.columns]
        return _subsample(df, n_rows, seed)
    return make

def _sklearn_tables() -> list:
    from sklearn import datasets as D
    return [
        Table('iris', 'species', [], 'multiclass', _sk(D.load_iris, 'species', True),
              '150 rows, 4 numeric features, 3 string classes (setosa/versicolor/virginica)', None, 3),
        Table('wine', 'cultivar', [], 'multiclass', _sk(D.load_wine, 'cultivar', False),
              '178 rows, 13 numeric features, 3 classes as integers 0/1/2 (numeric labels must still be multiclass)', None, 3),
        Table('breast_cancer', 'diagnosis', [], 'binary', _sk(D.load_breast_cancer, 'diagnosis', True),
              "569 rows, 30 numeric features, string labels 'malignant'/'benign'", None, 2),
        Table('diabetes', 'progression', [], 'regression', _sk(D.load_diabetes, 'progression', False),
              '442 rows, 10 standardized numeric features, numeric target (disease progression)', None, None),
        Table('digits', 'digit', [], 'multiclass', _sk(D.load_digits, 'digit', False),
              '1,797 rows, 64 pixel columns (several always 0: constant, dropped), 10 integer classes', None, 10),
    ]

# ---------------------------------------------------------------------------------------------------------------
# generated tables

def make_churn(n_rows=None, seed=0) -> pd.DataFrame:
    "Small binary table: string labels, an integer ID, a unique name, a constant column, a boolean feature."
    n = _n(n_rows, 150); rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    calls = rng.poisson(2.0, n)
    fee = rng.normal(45, 15, n).clip(10, 120).round(2)
    contract = rng.random(n) < 0.5
    plan = rng.choice(['basic', 'plus', 'pro'], n, p=[0.5, 0.3, 0.2])
    z = 1.2 - 0.06 * tenure + 0.7 * calls - 1.5 * contract + 0.02 * (fee - 45) + rng.normal(0, 0.5, n)
    churned = np.where(rng.random(n) < _sigmoid(z), 'yes', 'no')
    return pd.DataFrame(dict(customer_id=10_001 + rng.permutation(n), name=_names(rng, n), tenure_months=tenure,
                             monthly_fee=fee, support_calls=calls, has_contract=contract, plan=plan, country='NL',
                             churned=churned))

def make_credit(n_rows=None, seed=0) -> pd.DataFrame:
    "Binary table with a boolean label, boolean features, 20% missing income and a sensitive 'group' (C is small)."
    n = _n(n_rows, 3000); rng = np.random.default_rng(seed)
    group = rng.choice(['A', 'B', 'C'], n, p=[0.6, 0.34, 0.06])
    age = rng.integers(18, 75, n)
    income = rng.lognormal(10.5, 0.5, n).round(-2)
    debt_ratio = rng.beta(2, 5, n).round(3)
    n_loans = rng.poisson(1.5, n)
    owns_home = rng.random(n) < 0.45
    guarantor = rng.random(n) < 0.2
    purpose = rng.choice(['car', 'home', 'education', 'business', 'other'], n)
    z = (-0.8 + 10.0 * (debt_ratio - 0.28) - 2.5 * (np.log(income) - 10.5) + 0.6 * (n_loans - 1.5) - 1.5 * owns_home
         - 1.8 * guarantor - 0.04 * (age - 45) + 1.0 * (purpose == 'business') + 0.4 * (group == 'C') + rng.normal(0, 0.3, n))
    defaulted = rng.random(n) < _sigmoid(z)
    return pd.DataFrame(dict(age=age, income=_punch(income, 0.2, rng), debt_ratio=debt_ratio, n_loans=n_loans,
                             owns_home=owns_home, has_guarantor=guarantor, purpose=purpose, group=group,
                             defaulted=defaulted))

def make_tickets(n_rows=None, seed=0) -> pd.DataFrame:
    "3-class string labels; a long free-text description (mostly unique) and an ISO date column."
    n = _n(n_rows, 1200); rng = np.random.default_rng(seed)
    opened = _dates(rng, n)
    priority = rng.choice(['low', 'medium', 'high'], n, p=[0.5, 0.35, 0.15])
    attachments = rng.poisson(1.0, n)
    account_age = rng.integers(1, 3000, n)
    business = rng.random(n) < 0.35
    month = opened.month.to_numpy()
    scores = np.stack([
        1.0 * business + 0.8 * np.isin(month, [1, 12]) - 0.3 * attachments,        # billing: business, year end
        1.0 * attachments + 0.8 * (priority == 'high') - 0.3,                        # technical: screenshots, urgent
        1.6 * (account_age < 300) - 0.5 * business,                                   # account: new customers
    ], axis=1)
    y = _class_draw(2.0 * scores, rng, noise=1.0)
    topics = np.array(['billing', 'technical', 'account'])[y]
    text = [_ticket_text(rng, t, rng.random() < 0.6) for t in topics]
    return pd.DataFrame(dict(opened=opened.strftime('%Y-%m-%d'), description=text, priority=priority,
                             n_attachments=attachments, account_age_days=account_age, is_business=business,
                             topic=topics))

def make_energy(n_rows=None, seed=0) -> pd.DataFrame:
    "Regression with a seasonal (month) signal from an ISO date column; ~13% duplicate rows."
    n = _n(n_rows, 2500); rng = np.random.default_rng(seed)
    date = _dates(rng, n)
    month = date.month.to_numpy()
    season = np.cos(2 * np.pi * (month - 1) / 12)              # +1 in January, -1 in July
    temperature = (10 - 8 * season + rng.normal(0, 3, n)).round(1)
    household = rng.integers(1, 6, n)
    solar = rng.random(n) < 0.3
    building = rng.choice(['flat', 'terrace', 'detached'], n, p=[0.4, 0.4, 0.2])
    kwh = (8 + 4 * season - 0.25 * (temperature - 10) + 2.2 * household - 3.5 * solar
           + np.select([building == 'flat', building == 'terrace'], [-1.5, 0.0], 2.5) + rng.normal(0, 1.5, n))
    df = pd.DataFrame(dict(date=date.strftime('%Y-%m-%d'), temperature_c=temperature, household_size=household,
                           has_solar=solar, building=building, consumption_kwh=kwh.round(2)))
    return _with_duplicates(df, 0.13, rng)

def make_sensors(n_rows=None, seed=0) -> pd.DataFrame:
    "10 integer classes (0..9) from 12 numeric sensors (class clusters), a constant column, ~13% duplicate rows."
    n = _n(n_rows, 3000); rng = np.random.default_rng(seed)
    centers = np.random.default_rng(1234).normal(0, 1.0, (10, 12))     # fixed geometry, the seed draws the rows
    y = rng.integers(0, 10, n)
    x = centers[y] + rng.normal(0, 0.9, (n, 12))
    df = pd.DataFrame(x.round(4), columns=[f'sensor_{i + 1:02d}' for i in range(12)])
    df['firmware'] = 3
    df['fault_code'] = y
    return _with_duplicates(df, 0.13, rng)

def make_clicks(n_rows=None, seed=0) -> pd.DataFrame:
    "Large binary table (100,000 rows by default) with integer 0/1 labels, 20% missing dwell time, a sensitive age band."
    n = _n(n_rows, 100_000); rng = np.random.default_rng(seed)
    position = rng.integers(1, 11, n)
    price = rng.lognormal(3.0, 0.8, n).round(2)
    hour = rng.integers(0, 24, n)
    device = rng.choice(['mobile', 'desktop', 'tablet'], n, p=[0.6, 0.32, 0.08])
    returning = rng.random(n) < 0.4
    dwell = rng.gamma(2.0, 15.0, n).round(1)
    category = rng.choice([f'cat_{i:02d}' for i in range(20)], n)
    cat_effect = np.random.default_rng(99).normal(0, 0.5, 20)[np.char.replace(category, 'cat_', '').astype(int)]
    age_band = rng.choice(['18-29', '30-49', '50+'], n, p=[0.3, 0.5, 0.2])
    z = (0.6 - 0.5 * (position - 1) - 0.8 * (np.log(price) - 3) + 1.5 * returning + 0.04 * (dwell - 30)
         + 0.5 * (device == 'desktop') + 0.8 * np.isin(hour, range(18, 23)) + 2 * cat_effect + rng.normal(0, 0.3, n))
    clicked = (rng.random(n) < _sigmoid(z)).astype(int)
    return pd.DataFrame(dict(position=position, price=price, hour=hour, device=device, is_returning=returning,
                             dwell_seconds=_punch(dwell, 0.2, rng), category=category, age_band=age_band,
                             clicked=clicked))

def make_survey(n_rows=None, seed=0) -> pd.DataFrame:
    "3 ordinal classes as numbers 1/2/3, an integer respondent ID, string categories, booleans, a sensitive gender."
    n = _n(n_rows, 600); rng = np.random.default_rng(seed)
    region = rng.choice(['north', 'east', 'south', 'west'], n)
    visits = rng.poisson(3, n)
    wait = rng.gamma(2.0, 6.0, n).round(1)
    used_app = rng.random(n) < 0.55
    premium = rng.random(n) < 0.25
    gender = rng.choice(['female', 'male', 'nonbinary'], n, p=[0.48, 0.47, 0.05])
    z = (0.35 * visits - 0.12 * wait + 0.9 * used_app + 1.0 * premium + 0.4 * (region == 'south')
         + rng.logistic(0, 0.6, n))
    satisfaction = np.digitize(z, np.quantile(z, [0.33, 0.67])) + 1
    return pd.DataFrame(dict(respondent_id=rng.permutation(n) + 1, region=region, visits_per_month=visits,
                             wait_minutes=wait, used_app=used_app, premium=premium, gender=gender,
                             satisfaction=satisfaction))

def make_houses(n_rows=None, seed=0) -> pd.DataFrame:
    "Small regression: an integer listing ID, a unique address string, a listing date, a constant currency, missing values."
    n = _n(n_rows, 150); rng = np.random.default_rng(seed)
    area = rng.normal(110, 35, n).clip(30, 300).round()
    rooms = np.clip((area / 25 + rng.normal(0, 1, n)).round(), 1, 10).astype(int)
    year = rng.integers(1900, 2024, n)
    garden = rng.random(n) < 0.5
    city = rng.choice(['Amsterdam', 'Utrecht', 'Groningen', 'Eindhoven'], n, p=[0.3, 0.3, 0.2, 0.2])
    listed = _dates(rng, n)
    numbers = rng.permutation(n * 5)[:n] + 1
    address = [f"{_STREETS[rng.integers(len(_STREETS))]} {k}, {c}" for k, c in zip(numbers, city)]
    city_k = np.select([city == 'Amsterdam', city == 'Utrecht', city == 'Groningen'], [6.5, 4.8, 3.2], 3.6)
    price = (area * city_k * 1000 * (1 + 0.08 * garden) * (1 + 0.001 * (year - 1960)) * rng.lognormal(0, 0.08, n)).round(-3)
    return pd.DataFrame(dict(listing_id=rng.permutation(n) + 50_000, address=address, listed=listed.strftime('%Y-%m-%d'),
                             area_m2=area, rooms=rooms, year_built=_punch(year, 0.2, rng), has_garden=garden, city=city,
                             currency='EUR', price=price))

def _generated_tables() -> list:
    return [
        Table('churn', 'churned', [], 'binary', make_churn,
              "150 rows; string labels yes/no; integer ID customer_id, unique string name, constant column country, "
              "boolean has_contract", 150, 2),
        Table('credit', 'defaulted', ['group'], 'binary', make_credit,
              "3,000 rows; boolean label; boolean features; income 20% missing; sensitive group A/B/C with C ~6%", 3000, 2),
        Table('tickets', 'topic', [], 'multiclass', make_tickets,
              "1,200 rows; 3 string classes; long free-text description (mostly unique); ISO date opened (2023-2024, "
              "label depends on month); boolean is_business", 1200, 3),
        Table('energy', 'consumption_kwh', [], 'regression', make_energy,
              "2,500 rows; regression; ISO date over two years (seasonal month signal); ~13% duplicate rows; boolean "
              "has_solar", 2500, None),
        Table('sensors', 'fault_code', [], 'multiclass', make_sensors,
              "3,000 rows; 10 integer classes 0..9; 12 numeric features; constant column firmware; ~13% duplicate rows",
              3000, 10),
        Table('clicks', 'clicked', ['age_band'], 'binary', make_clicks,
              "100,000 rows (numpy; make(n_rows=...) shrinks it); integer 0/1 labels (~40% positive); dwell_seconds 20% "
              "missing; 20-level category; sensitive age_band", 100_000, 2),
        Table('survey', 'satisfaction', ['gender'], 'multiclass', make_survey,
              "600 rows; 3 ordinal classes as numbers 1/2/3; integer ID respondent_id; boolean features; sensitive "
              "gender with a small group (nonbinary ~5%)", 600, 3),
        Table('houses', 'price', [], 'regression', make_houses,
              "150 rows; regression; integer ID listing_id, unique address string, ISO date listed, constant currency, "
              "year_built 20% missing", 150, None),
    ]

TABLES: 'OrderedDict[str, Table]' = OrderedDict((t.name, t) for t in _sklearn_tables() + _generated_tables())
GENERATED = [t.name for t in _generated_tables()]

# ---------------------------------------------------------------------------------------------------------------

def load(name: str, n_rows: int|None = None, seed: int = 0) -> pd.DataFrame:
    "The table `name` as a DataFrame (`n_rows`: its size; default the table's `default_rows`, or all bundled rows)."
    if name not in TABLES: raise KeyError(f"unknown corpus table {name!r} (tables: {', '.join(TABLES)})")
    return TABLES[name].make(n_rows, seed)

def write_table(name: str, folder, n_rows: int|None = None, seed: int = 0, fmt: str = 'csv') -> Path:
    "Write the table `name` to `folder/<name>.<fmt>` (fmt 'csv' or 'parquet'); return the path."
    if fmt not in ('csv', 'parquet'): raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    df = load(name, n_rows, seed)
    folder = Path(folder); folder.mkdir(parents=True, exist_ok=True)
    path = folder/f'{name}.{fmt}'
    if fmt == 'csv': df.to_csv(path, index=False)
    else: df.to_parquet(path, index=False)
    return path

# ---------------------------------------------------------------------------------------------------------------
# self-check: each table builds, has its target and class count, and (generated tables) a quick HistGradientBoosting
# model clearly beats the trivial baseline (majority class / mean).

def _features(df: pd.DataFrame, target: str) -> pd.DataFrame:
    "Numeric features for the check: IDs and free text dropped, ISO dates -> month, strings/booleans -> codes."
    X = pd.DataFrame(index=df.index)
    for c in df.columns:
        if c == target: continue
        x = df[c]
        if x.dtype == bool: X[c] = x.astype(int); continue
        if pd.api.types.is_numeric_dtype(x):
            if x.nunique() >= 0.95 * len(x) and pd.api.types.is_integer_dtype(x): continue     # an ID
            X[c] = x; continue
        d = pd.to_datetime(x, errors='coerce', format='%Y-%m-%d')
        if d.notna().mean() > 0.9: X[c + '_month'] = d.dt.month; continue
        if x.nunique() > 0.5 * len(x): continue                                                 # ID or free text
        X[c] = x.astype('category').cat.codes
    return X

def self_check(names=None, max_rows: int|None = None, seed: int = 0, verbose=True) -> list:
    "Build each table and score a quick HGB model against the trivial baseline; return one dict per table."
    import time
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    rows = []
    for name in names or TABLES:
        t = TABLES[name]
        n = None if max_rows is None else min(max_rows, t.default_rows or max_rows)
        t0 = time.perf_counter(); df = load(name, n, seed); built = time.perf_counter() - t0
        again = load(name, n, seed)
        problems = []
        if not df.equals(again): problems.append('not deterministic')
        if t.target not in df.columns: problems.append('target missing')
        for s in t.sensitive:
            if s not in df.columns: problems.append(f'sensitive {s} missing')
        y = df[t.target]
        k = int(y.nunique())
        if t.task != 'regression' and k != t.n_classes: problems.append(f'{k} classes, expected {t.n_classes}')
        X = _features(df, t.target)
        strat = y if t.task != 'regression' else None
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=strat)
        if t.task == 'regression':
            m = HistGradientBoostingRegressor(random_state=seed).fit(Xtr, ytr)
            score, trivial, metric = r2_score(yte, m.predict(Xte)), r2_score(yte, np.full(len(yte), ytr.mean())), 'r2'
            beats = score > trivial + 0.2
        else:
            m = HistGradientBoostingClassifier(random_state=seed).fit(Xtr, ytr)
            score, metric = accuracy_score(yte, m.predict(Xte)), 'accuracy'
            trivial = accuracy_score(yte, np.full(len(yte), ytr.value_counts().idxmax(), dtype=object if y.dtype == object else y.dtype))
            beats = score > trivial + 0.05
        if name in GENERATED and not beats: problems.append(f'HGB {metric} {score:.3f} does not beat trivial {trivial:.3f}')
        r = dict(table=name, rows=len(df), columns=df.shape[1], task=t.task, classes=None if t.task == 'regression' else k,
                 metric=metric, hgb=round(float(score), 4), trivial=round(float(trivial), 4),
                 build_s=round(built, 3), duplicates=int(df.duplicated().sum()),
                 missing_cols=[c for c in df.columns if df[c].isna().any()], ok=not problems, problems=problems)
        rows.append(r)
        if verbose:
            print(f"{name:14} {r['rows']:7,} rows {r['columns']:3} cols  {t.task:10} classes {str(r['classes']):4}  "
                  f"HGB {metric} {score:.3f} vs trivial {trivial:.3f}  build {built:.3f}s  dup {r['duplicates']:5}  "
                  f"{'ok' if r['ok'] else 'PROBLEM: ' + '; '.join(problems)}", flush=True)
    return rows

if __name__ == '__main__':
    import argparse, sys
    ap = argparse.ArgumentParser(description='self-check of the test corpus')
    ap.add_argument('--tables', help='comma-separated table names (default: all)')
    ap.add_argument('--max-rows', type=int, help='shrink the generated tables to at most this many rows')
    a = ap.parse_args()
    res = self_check(a.tables.split(',') if a.tables else None, a.max_rows)
    sys.exit(0 if all(r['ok'] for r in res) else 1)
