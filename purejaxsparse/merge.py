"""`purejaxsparse merge`: the output files of several sweeps of one study (one directory per
seed, env, network width or purejaxsparse version) combined into one directory that `report`
reads like a sweep."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

from .results import (CONFIG_FILE, RESULTS_FILE, RUN_INFO, RUN_OUTPUTS, RUNS_FILE, SHAPE_COLUMNS, env_name, file_text,
                      read_config, require_file, write_csv)

MERGE_FREE_KEYS = ("name", "env", "sweep", "logging", "checkpoint_every", "merged_from", "filled")
"""Config keys that may differ between the sweeps that `merge_sweeps` combines (the sweep grid
is compared through the runs themselves: no run may appear twice; live logging changes no
result; a merged directory may be merged again)."""

FILLED_SECTIONS = ("hparams", "agent_config")
"""Config sections whose settings a sweep written before a setting existed lacks (`merge_sweeps`'
`defaults`)."""


def _fill_settings(configs: list[dict], tables: list, defaults: dict) -> list[list[str]]:
    """Complete, in place, the configs and runs tables of sweeps written before some setting
    existed: a setting that another source has and this one lacks (a runs.csv column, a key of
    `FILLED_SECTIONS`) takes its default from `defaults`, the value every setting has before it
    can be changed. Returns the filled names per source; a missing name without a default stays
    missing (and the merge refuses it)."""
    header = max((runs[0] for runs, _ in tables), key=len)
    filled = []
    for i, (cfg, ((cols, rows), results)) in enumerate(zip(configs, tables)):
        names = [c for c in header if c not in cols and c in defaults]
        for section in FILLED_SECTIONS:
            wanted = {k for other in configs for k in (other.get(section) or {})}
            lacks = sorted(k for k in wanted - set(cfg.get(section) or {}) if k in defaults)
            if lacks:
                cfg[section] = {**(cfg.get(section) or {}), **{k: defaults[k] for k in lacks}}
                names += [k for k in lacks if k not in names]
        if any(c not in cols for c in header) and set(header) <= set(cols) | set(defaults):
            where = {c: j for j, c in enumerate(cols)}
            rows = [[row[where[c]] if c in where else str(defaults[c]) for c in header] for row in rows]
            tables[i] = ((list(header), rows), results)
        filled.append(sorted(names))
    return filled


def _merge_compared(config: dict) -> dict:
    """What must agree between merged sweeps: the config but ``MERGE_FREE_KEYS`` and the
    network shape (``SHAPE_COLUMNS``, a runs.csv column that tells the runs apart)."""
    out = {k: v for k, v in config.items() if k not in MERGE_FREE_KEYS}
    if "agent_config" in out:
        out["agent_config"] = {k: v for k, v in out["agent_config"].items() if k not in SHAPE_COLUMNS}
    return out


def merge_sweeps(out_dir: str | Path, sources: list[str | Path], defaults: dict | None = None) -> dict:
    """Combine the output files of several sweeps of one study (e.g. one directory per seed or
    per env) into ``out_dir``: runs.csv and results.csv with runs renumbered in source order
    (every other value copied as written), and config.yaml with ``env`` (a list when the envs
    differ), ``sweep`` holding every value any source swept (``sweep.seed``: the seeds the runs
    hold) and ``merged_from``. `report` reads the result like a sweep; it has no checkpoints, so
    it cannot be resumed, exported or noise-tested.

    Refused with ValueError (one line) when a source is not a sweep directory, the configs differ
    in anything but ``MERGE_FREE_KEYS`` and the network width (a list in the merged config when
    it differs), their files have different columns, or a run (same env,
    seed and hyperparameters) appears in two sources. Returns the merged config.

    defaults: setting name -> default value (the agent's hyperparameters and static settings).
    With it, a sweep written by an earlier version, before some setting existed, merges with
    newer ones: its runs take that setting's default, and the merged config lists them under
    ``filled`` per source (e.g. ``skip_gradient``, added with False, the earlier behaviour).
    """
    out_dir, sources = Path(out_dir), [Path(s) for s in sources]
    if len(sources) < 2:
        raise ValueError("merge: give at least two sweep directories")
    if any(out_dir.resolve() == s.resolve() for s in sources):
        raise ValueError(f"merge: the output directory {out_dir} is one of the sources")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"merge: {out_dir} is not empty")
    configs = [read_config(s) for s in sources]
    tables = [(_csv_text(s / RUNS_FILE, RUNS_FILE), _csv_text(s / RESULTS_FILE, RESULTS_FILE)) for s in sources]
    filled = _fill_settings(configs, tables, defaults or {})
    base = _merge_compared(configs[0])
    for s, cfg, (runs, results) in zip(sources[1:], configs[1:], tables[1:]):
        other = _merge_compared(cfg)
        differs = sorted(k for k in set(base) | set(other) if base.get(k) != other.get(k))
        if differs:
            raise ValueError(f"merge: {s} differs from {sources[0]} in {differs[0]!r}; only "
                             f"{', '.join(MERGE_FREE_KEYS)} may differ")
        for name, (header, _), (first, _) in ((RUNS_FILE, runs, tables[0][0]), (RESULTS_FILE, results, tables[0][1])):
            if header != first:
                raise ValueError(f"merge: {s}/{name} has other columns than {sources[0]}/{name}")
    runs_header, results_header = tables[0][0][0], tables[0][1][0]
    settings = [i for i, c in enumerate(runs_header) if c not in ("run",) + RUN_OUTPUTS]
    col = {c: runs_header.index(c) for c in RUN_INFO}
    run_rows, result_rows, seen = [], [], {}
    for s, ((_, runs), (_, results)) in zip(sources, tables):
        renumber = {}
        for row in runs:
            key = tuple(row[i] for i in settings)
            if key in seen:
                raise ValueError(f"merge: run {row[0]} of {s} (env {row[col['env']]}, method "
                                 f"{row[col['method']]}, seed {row[col['seed']]}) is also in {seen[key]}")
            seen[key] = s
            renumber[row[0]] = str(len(run_rows))
            run_rows.append([renumber[row[0]]] + row[1:])
        result_rows += [[renumber[row[0]]] + row[1:] for row in results if row[0] in renumber]
    envs = list(dict.fromkeys(env for cfg in configs for env in _env_list(cfg)))
    merged = dict(configs[0])
    merged["env"] = configs[0]["env"] if len(envs) == 1 else envs
    seeds = sorted({int(row[col["seed"]]) for row in run_rows})
    merged["sweep"] = {**_swept_values(configs), "seed": seeds}
    shapes = {c: list(dict.fromkeys((cfg.get("agent_config") or {}).get(c, 1) for cfg in configs)) for c in SHAPE_COLUMNS}
    if any(len(v) > 1 for v in shapes.values()):
        merged["agent_config"] = {**(merged.get("agent_config") or {}),
                                  **{c: v if len(v) > 1 else v[0] for c, v in shapes.items()}}
    merged["merged_from"] = [str(s) for s in sources]
    merged.pop("filled", None)
    if any(filled):
        merged["filled"] = {str(s): names for s, names in zip(sources, filled) if names}
    merged.pop("logging", None)  # a merged directory is read, never logged
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG_FILE).write_text(yaml.safe_dump(merged, sort_keys=False))
    write_csv(out_dir / RUNS_FILE, runs_header, run_rows)
    write_csv(out_dir / RESULTS_FILE, results_header, result_rows)
    return merged


def _swept_values(configs: list[dict]) -> dict:
    """Every value each sweep key takes in any source (numbers sorted, others in order of first
    appearance): sources at other sparsities or with other methods merge into one grid."""
    out = {}
    for cfg in configs:
        for key, value in (cfg.get("sweep") or {}).items():
            out.setdefault(key, []).extend(value if isinstance(value, list) else [value])
    for key, values in out.items():
        values = list(dict.fromkeys(values))
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        out[key] = sorted(values) if numbers else values
    return out


def _env_list(config: dict) -> list[str]:
    env = config["env"]
    return [env_name({"env": e}) for e in env] if isinstance(env, list) else [env_name(config)]


def _csv_text(path: Path, what: str) -> tuple[list[str], list[list[str]]]:
    """(header, complete rows) of a CSV file as text, so a copy keeps every value as written;
    a partial last line (a write in progress) is left out. The first column must be ``run``."""
    text = file_text(require_file(path, what))
    lines = text.split("\n")
    complete = lines[1:] if text.endswith("\n") else lines[1:-1]
    header = next(csv.reader([lines[0]]), [])
    if not header or header[0] != "run":
        raise ValueError(f"{path}: expected a header starting with 'run'")
    return header, [r for r in csv.reader([line for line in complete if line]) if len(r) == len(header)]


def setting_defaults(sweep_dir) -> dict:
    """Default of every hyperparameter and static setting of the agent a sweep ran ({} when the
    directory or its agent is unknown: `merge_sweeps` then reports what is wrong)."""
    import dataclasses

    from .agents import AGENTS  # jax: only when a merge asks
    from .fields import field_specs

    try:
        agent = AGENTS[read_config(sweep_dir)["agent"]]
    except (ValueError, KeyError, TypeError, OSError):
        return {}
    static = {f.name: f.default for f in dataclasses.fields(agent.Static) if f.default is not dataclasses.MISSING}
    return {**static, **{name: spec.default for name, spec in field_specs(agent.HParams).items()}}
