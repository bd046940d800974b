"""Print the tables of this folder's README from the merged sweep: the group table (IQM with
its 95% CI, normalised by full dense, dormant units and active parameters per network), the
final score of every run, how fast each run learned, and the seed check (pruning equals full
dense, bit for bit, until its first mask update).

    python docs/results/sac_halfcheetah_cpu/tables.py docs/results/sac_halfcheetah_cpu

Refuses (exits with a message) a sweep with a diverged or incomplete run: the README's numbers count
every run, so every run must be there.
"""

import sys
from pathlib import Path

import pandas as pd

from purejaxsparse.analysis.plot_style import METHOD_LABELS as METHODS  # the figures' names, in their order
THRESHOLDS = (1000, 3000, 5000)


def group_table(summary: pd.DataFrame) -> str:
    lines = ["| method | seeds | IQM [95% CI] | IQM / full dense | dormant: actor, critics "
             "| active params: actor, critics |", "|---|---|---|---|---|---|"]
    for method, name in METHODS.items():
        r = summary[summary["method"] == method].iloc[0]
        lines.append(f"| {name} | {r['n_runs']} | {r['iqm']:.0f} [{r['ci_low']:.0f}, {r['ci_high']:.0f}] "
                     f"| {r['norm_iqm']:.3f} | {100 * r['final_dormant_frac_actor']:.1f}%, "
                     f"{100 * r['final_dormant_frac_critic']:.1f}% | {r['final_active_params_actor']:,.0f}, "
                     f"{r['final_active_params_critic']:,.0f} |")
    return "\n".join(lines)


def seed_table(scores: pd.DataFrame) -> str:
    wide = scores.pivot(index="seed", columns="method", values="final_score")[list(METHODS)]
    lines = ["| seed | " + " | ".join(METHODS.values()) + " |", "|---" * (len(METHODS) + 1) + "|"]
    lines += [f"| {seed} | " + " | ".join(f"{v:.0f}" for v in row) + " |" for seed, row in wide.iterrows()]
    lines.append("| mean | " + " | ".join(f"{v:.0f}" for v in wide.mean()) + " |")
    return "\n".join(lines)


def learning_table(results: pd.DataFrame) -> str:
    """Per method: the first evaluation step (thousands of env steps) at which each seed's
    return passed each threshold, and each seed's mean of all 30 evaluations (the area under
    the learning curve, per step); seeds in order, comma-separated."""
    lines = ["| method | " + " | ".join(f"first eval > {t:,}" for t in THRESHOLDS)
             + " | mean of all evaluations |", "|---" * (len(THRESHOLDS) + 2) + "|"]
    for method, name in METHODS.items():
        runs = results[results["method"] == method].groupby("seed")
        cells = []
        for t in THRESHOLDS:
            firsts = [g.loc[g["eval_return"] > t, "step"].min() for _, g in runs]
            cells.append(", ".join("never" if pd.isna(s) else f"{s / 1000:.0f}" for s in firsts))
        cells.append(", ".join(f"{g['eval_return'].mean():.0f}" for _, g in runs))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seed_check(results: pd.DataFrame) -> str:
    """Pruning runs the dense network (same weight decay) until its first mask update, so with
    the same seed its evaluations must equal full dense's exactly until then."""
    out = []
    for seed, g in results.groupby("seed"):
        dense = g[g["method"] == "dense"].set_index("step")["eval_return"]
        prune = g[g["method"] == "prune"].set_index("step")["eval_return"]
        same = (dense == prune.reindex(dense.index)).to_numpy()
        n = len(same) if same.all() else int(same.argmin())
        out.append(f"seed {seed}: the first {n} evaluations (to {dense.index[n - 1] / 1000:.0f}k steps) "
                   f"are equal" if n else f"seed {seed}: the first evaluation differs")
    return "\n".join(out)


def main(folder: Path) -> None:
    summary = pd.read_csv(folder / "report" / "summary.csv")
    scores = pd.read_csv(folder / "report" / "final_scores.csv")
    results = pd.read_csv(folder / "results.csv")
    if len(scores) != 18 or not scores["complete"].all() or scores["diverged"].any():
        sys.exit(f"tables.py: the README counts all 18 runs, complete and finite; {folder} has {len(scores)} runs, "
                 f"{(~scores['complete']).sum()} incomplete, {scores['diverged'].sum()} diverged")
    for title, text in (("Groups", group_table(summary)), ("Final score per seed", seed_table(scores)),
                        ("Learning speed", learning_table(results)), ("Seed check", seed_check(results))):
        print(f"## {title}\n\n{text}\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
