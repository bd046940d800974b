"""Methods as declarations: the built-ins reproduce the per-method rule on a hand-worked layer,
a registered method runs beside them in one vmapped program and is planned like them, a method
registered after a compile takes effect, and bad declarations are refused."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxsparse import sparse as sp
from purejaxsparse.analysis import plot_style
from purejaxsparse.cli import main
from purejaxsparse.config import plan_sweep, run_values
from purejaxsparse.config import build_agent
from purejaxsparse.errors import ConfigError
from purejaxsparse.run_checks import check_run, check_schedule
from purejaxsparse.sparse import methods

from conftest import tiny_sweep_config

# Liu et al. 2021 (GraNet): gradual magnitude pruning from dense, regrowing by |gradient|.
GRANET = sp.Method("test_granet", init="dense", schedule="polynomial", regrow=True, grow=sp.gradient_score)
SHAPES = ((4, 5), (5, 2))
SPEC = sp.SparseSpec.from_params({f"layer_{l}": {"kernel": jnp.zeros(s)} for l, s in enumerate(SHAPES)})
START, END, INTERVAL, F0, S = 20, 60, 10, 0.5, 0.5
STEPS = (0, 10, 15, 20, 30, 35, 40, 60, 65)


@pytest.fixture(scope="module")
def granet():
    """GRANET registered for this module's tests; the registry is restored afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(methods, "_registry", methods._registry)
        sp.register_method(GRANET)
        yield GRANET


# -- today's rule, by hand ------------------------------------------------------------------
def hand_counts(method: str, cut_mode: bool, t: int, nnz: int, n: int) -> tuple[int, int]:
    """(n_keep, n_grow) of the module table of updaters.py, in numpy (uniform distribution)."""
    k_final = round((1 - S) * n)
    f = F0 / 2 * (1 + math.cos(math.pi * min(t, END) / END))
    on_grid = START <= t <= END and (t - START) % INTERVAL == 0
    if cut_mode and method in ("static", "set", "rigl") and t == START:
        return k_final, 0
    if method in ("set", "rigl") and on_grid:
        d = math.floor(np.float32(f) * nnz)
        return nnz - d, d
    if method in ("prune", "test_granet") and START < t <= END and (on_grid or t == END):
        s_t = np.float32(1 - (1 - (t - START) / (END - START)) ** 3)
        target = min(int(np.round((1 - np.float32(S) * s_t) * np.float32(n))), nnz)
        d = math.floor(np.float32(f) * target) if method == "test_granet" else 0
        return target - d, d
    return nnz, 0


ROWS = [(m, False) for m in ("dense", "dense_width", "static", "set", "rigl", "prune", "test_granet")] + \
       [(m, True) for m in ("static", "set", "rigl")]
"""(method, start_mode dense_then_cut) of each run of the vmapped batch."""


def batch():
    """Per run: hparams, masks (dense starts and cuts: all on; else the first k_l of a fixed
    order), distinct weights on the active entries and distinct gradients."""
    rng = np.random.default_rng(0)
    hps, masks, params, grads = [], [], [], []
    for method, cut in ROWS:
        hps.append(sp.SparseHParams.make(method, S, distribution="uniform", drop_fraction=F0,
                                         update_interval=INTERVAL, start=START, end=END,
                                         start_mode="dense_then_cut" if cut else "delay_updates"))
        full = cut or method in ("dense", "dense_width", "prune", "test_granet")
        m, p, g = {}, {}, {}
        for l, shape in enumerate(SHAPES):
            n = math.prod(shape)
            on = np.zeros(n, bool)
            on[rng.permutation(n)[: n if full else round((1 - S) * n)]] = True
            w = rng.permutation(np.arange(1, n + 1)) * rng.choice([-1.0, 1.0], n) / n
            m[f"layer_{l}"] = {"kernel": on.reshape(shape)}
            p[f"layer_{l}"] = {"kernel": np.where(on, w, 0.0).astype(np.float32).reshape(shape)}
            g[f"layer_{l}"] = {"kernel": (rng.permutation(n) + 1.0).astype(np.float32).reshape(shape)}
        masks.append(m), params.append(p), grads.append(g)
    stack = lambda xs: jax.tree.map(lambda *a: jnp.asarray(np.stack(a)), *xs)  # noqa: E731
    return stack(hps), stack(masks), stack(params), stack(grads)


@jax.jit
def update_all(step, hp, masks, params, grads):
    keys = jax.random.split(jax.random.PRNGKey(1), len(ROWS))
    return jax.vmap(lambda k, h, m, p, g: sp.update_masks(k, SPEC, h, step, m, p, g))(keys, hp, masks, params, grads)


def test_declarations_reproduce_the_rule_in_one_program(granet):
    """Built-ins and a registered method side by side in one vmapped program: at grid, off-grid,
    cut, end and after-end steps, the exact keep set (largest |w|), the grow count, and RigL's and
    GraNet's grow sets (largest |grad| among the rest) match the hand computation."""
    hp, masks, params, grads = batch()
    for t in STEPS:
        new = update_all(jnp.int32(t), hp, masks, params, grads)
        for r, (method, cut) in enumerate(ROWS):
            for l, shape in enumerate(SHAPES):
                name = f"layer_{l}"
                old = np.asarray(masks[name]["kernel"][r]).ravel()
                w = np.abs(np.asarray(params[name]["kernel"][r]).ravel())
                g = np.abs(np.asarray(grads[name]["kernel"][r]).ravel())
                got = np.asarray(new[name]["kernel"][r]).ravel()
                n_keep, n_grow = hand_counts(method, cut, t, int(old.sum()), math.prod(shape))
                keep = np.zeros_like(old)
                keep[np.argsort(-np.where(old, w, -1.0), kind="stable")[:n_keep]] = True
                where = f"{method} cut={cut} t={t} {name}"
                assert np.all(got[keep]), where
                assert int((got & ~keep).sum()) == n_grow, where
                if method in ("rigl", "test_granet"):
                    grow = np.zeros_like(old)
                    grow[np.argsort(-np.where(keep, -np.inf, g), kind="stable")[:n_grow]] = True
                    np.testing.assert_array_equal(got, keep | grow, err_msg=where)


def test_a_method_registered_after_a_compile_takes_effect(granet):
    """update_masks compiled with the registry of the time, then a method that keeps the
    smallest weights is registered: its runs follow it (a program traced with the old tables
    would clamp the new id to the last method's)."""
    hp, masks, params, grads = (jax.tree.map(lambda x: x[3], a) for a in batch())  # a SET run
    sp.update_masks(jax.random.PRNGKey(0), SPEC, hp, jnp.int32(30), masks, params, grads)
    smallest = sp.Method("test_smallest", init="sparse", schedule="interval", regrow=True,
                         drop=lambda w, g, key: -jnp.abs(w), grow=sp.gradient_score)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(methods, "_registry", methods._registry)
        late = sp.register_method(smallest)
        new = sp.update_masks(jax.random.PRNGKey(0), SPEC, hp.replace(method=jnp.int32(late)), jnp.int32(30),
                              masks, params, grads)
    for l in range(len(SHAPES)):
        old = np.asarray(masks[f"layer_{l}"]["kernel"]).ravel()
        w = np.abs(np.asarray(params[f"layer_{l}"]["kernel"]).ravel())
        nnz = int(old.sum())
        n_keep = nnz - math.floor(np.float32(0.25) * nnz)  # f(30) = 0.5 / 2 * (1 + cos(pi / 2))
        smallest_kept = np.flatnonzero(old)[np.argsort(w[old], kind="stable")[:n_keep]]
        got = np.asarray(new[f"layer_{l}"]["kernel"]).ravel()
        assert np.all(got[smallest_kept]) and got.sum() == nnz, l


BUILT_IN_IGNORED = {  # the table configs collapsed by before methods were declarations
    "dense": {"sparsity", "distribution", "drop_fraction", "update_interval", "start", "end", "sparse_init",
              "start_mode", "skip_gradient", "actor_sparsity", "critic_sparsity", "actor_param_fraction"},
    "dense_width": {"distribution", "drop_fraction", "update_interval", "start", "end", "sparse_init",
                    "start_mode", "skip_gradient"},
    "static": {"drop_fraction", "update_interval", "end"},
    "prune": {"drop_fraction", "sparse_init", "start_mode"},
    "set": set(),
    "rigl": set(),
}


def test_built_in_applies_is_the_old_table():
    names = set().union(*BUILT_IN_IGNORED.values()) | {"use_bias", "learning_rate", "method"}
    for m in sp.BUILT_IN:
        assert {n for n in names if not m.applies(n)} == BUILT_IN_IGNORED[m.name], m.name


def test_registered_method_is_planned_and_checked_like_a_built_in(granet, tmp_path, capsys):
    """Chosen by name in sweep.method with its method_defaults; settings that do not apply
    (sparse_init, start_mode: a dense start) collapse; the schedule checks apply; dry-run plans it."""
    config = tiny_sweep_config(sweep={"seed": 1, "method": ["rigl", "test_granet"], "sparse_init": [True, False],
                                      "start_mode": ["delay_updates", "dense_then_cut"]},
                               method_defaults={"test_granet": {"start": 200}})
    plan = plan_sweep(config)
    assert [r["method"] for r in plan.runs] == ["rigl"] * 4 + ["test_granet"]
    assert plan.duplicates == 3
    agent = build_agent(config)
    assert run_values(config, agent, {"method": "test_granet"})["start"] == 200
    with pytest.raises(ConfigError, match="test_granet: start 900 must be below end 900"):
        check_run({"method": "test_granet", "start": 900, "end": 900})
    with pytest.raises(ConfigError, match=r"end: 5000 \(test_granet\) is beyond"):
        check_schedule({"method": "test_granet", "start": 0, "end": 5000}, 1000, "test", 1000)
    with pytest.raises(ConfigError, match="method_defaults.nope: unknown method; allowed: .*test_granet"):
        plan_sweep({**config, "method_defaults": {"nope": {}}})
    path = tmp_path / "granet.yaml"
    path.write_text(f"agent: dqn\nenv: {{name: CartPole-v1, max_steps_in_episode: 100}}\ntotal_steps: 1200\n"
                    f"eval_every: 200\neval_episodes: 3\nagent_config: {{hidden: [16, 16], learning_starts: 100, "
                    f"batch_size: 16, buffer_size: 500}}\nhparams: {{end: 900}}\n"
                    f"sweep: {{seed: 2, method: [rigl, test_granet]}}\n")
    assert main(["run", str(path), "--dry-run"]) == 0
    assert "dry run" in capsys.readouterr().out


def test_declared_defaults_rank_below_the_agents_and_the_configs(granet):
    cut_free = sp.Method("test_skipping", init="sparse", schedule="interval", regrow=True,
                         defaults={"skip_gradient": True, "update_interval": 77})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(methods, "_registry", methods._registry)
        sp.register_method(cut_free)
        config = tiny_sweep_config()
        agent = build_agent(config)
        values = run_values(config, agent, {"method": "test_skipping"})
        assert values["skip_gradient"] is True and values["update_interval"] == 50  # config hparams win
        assert run_values(config, agent, {"method": "rigl"})["skip_gradient"] is False


@pytest.mark.parametrize("bad, message", [
    (dict(name="rigl", init="sparse", schedule="interval", regrow=True), "already registered"),
    (dict(name="GraNet"), "lower-case identifier"),
    (dict(name="x", init="random"), "init 'random'; allowed: dense, sparse, width"),
    (dict(name="x", schedule="cosine"), "schedule 'cosine'"),
    (dict(name="x", init="sparse", schedule="interval"), "set regrow=True"),
    (dict(name="x", regrow=True), "regrow swaps weights at scheduled updates"),
    (dict(name="x", init="width", schedule="polynomial"), "never changes"),
    (dict(name="x", init="sparse", schedule="polynomial"), "polynomial pruning starts dense"),
    (dict(name="x", init="sparse", schedule="interval", regrow=True, grow=lambda w, g, k: jnp.sum(w)),
     r"grow score gives \(\) for a \(3, 2\) kernel"),
    (dict(name="x", defaults=[1, 2]), "defaults"),
    (dict(name="x", defaults={"method": "rigl"}), "not 'method'"),
])
def test_bad_declarations_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        sp.register_method(sp.Method(**bad))
    with pytest.raises(ValueError, match="a Method"):
        sp.register_method("granet")


def test_an_unknown_method_gets_a_colour_label_and_a_place_last():
    assert plot_style.method_color("test_granet") not in plot_style.METHOD_COLORS.values()
    assert plot_style.method_label("test_granet") == "test_granet"
    assert sorted(["test_granet", "prune", "dense"], key=plot_style.method_rank) == ["dense", "prune", "test_granet"]
