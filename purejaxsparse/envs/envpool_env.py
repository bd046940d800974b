"""EnvPool Atari backend: ALE games with Dopamine's preprocessing, stepped inside `jit` via XLA.

Preprocessing (Dopamine / Machado et al. 2018, set through EnvPool's own options): 84x84
grayscale with INTER_AREA resize, a 4-frame stack, frame skip 4 with max-pooling of the last two
frames, sticky actions 0.25, full episodes (no life-loss terminal), no noop starts, no FIRE at
reset, episodes capped at 27,000 agent steps (108k frames) and reported as truncation. Rewards are
the raw game scores (agents clip them for learning); observations are uint8 [E, 84, 84, 4]
(NHWC, newest frame last) end to end: networks scale them.

**The runs axis is folded into one pool.** EnvPool's `xla()` step is an FFI call that cannot be
`vmap`ped. `reset` and `step` here are `jax.custom_batching.custom_vmap` functions whose batching
rule takes the R runs' actions [R, E], makes ONE call on a pool of R*E envs (sync mode), and
reshapes every output back to [R, E, ...]. We chose a batching rule over having the sweep engine
step the env outside the runs vmap because it keeps the agent code and `make_train` unchanged:
`jax.vmap(train)` over R runs simply steps a pool of R*E envs, and the chunk stays one compiled
program. Pools are created on the host when a function is traced, one per (envs per run, R,
stream), and kept for the life of the process. Run r owns envs [r*E, (r+1)*E) of the pool; env i
of a pool is seeded `seed + stream * 1_000_003 + i` by EnvPool, so runs never share episodes and
evaluation (its own stream, hence its own pool) never shares the training envs.

**EnvPool resets one step late.** After a step that ends an episode (terminated or truncated),
EnvPool's next step for that env ignores the action and returns the new episode's first
observation with reward 0. This backend passes that through instead of hiding it (the first
observation does not exist before that step): `info["valid"]` is False for such a reset step (it
is not a transition), `info["final_obs"]` is the observation itself, and `state.step == 0` marks
an observation that starts an episode. A reset observation holds the first frame 4 times (EnvPool
fills the stack with it; Dopamine uses zeros before the first frame).

**Not checkpointable.** The emulators live in the pool, outside JAX: `checkpointable = False`
tells the sweep engine that a resumed sweep restarts every episode (agents mark the restart so
no transition crosses it). The handle in `EnvState.inner` is only an ordering token for XLA (the
pool is named in the FFI call itself), so a restored stale handle is harmless.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from .core import Discrete, Env, EnvState

DOPAMINE_OPTIONS = dict(
    stack_num=4, frame_skip=4, img_height=84, img_width=84, gray_scale=True,
    use_inter_area_resize=True, noop_max=1, use_fire_reset=False, episodic_life=False,
    zero_discount_on_life_loss=False, reward_clip=False, full_action_space=False,
)
"""EnvPool options that give Dopamine's Atari preprocessing (noop_max=1: no noop starts)."""

GRAESSER_GAMES = ("MsPacman", "Pong", "Qbert", "Assault", "Asterix", "BeamRider", "Boxing", "Breakout",
                  "CrazyClimber", "DemonAttack", "Enduro", "FishingDerby", "SpaceInvaders", "Tutankham",
                  "VideoPinball")
"""The 15 games of Graesser et al. 2022."""

STREAM_SEED_STRIDE = 1_000_003


@functools.lru_cache(maxsize=1)
def atari_games() -> tuple[str, ...]:
    """Every ALE game EnvPool ships (from its ROM folder, without importing envpool: it is slow)."""
    spec = importlib.util.find_spec("envpool_assets")
    if spec is None or not spec.submodule_search_locations:
        return ()
    roms = os.path.join(list(spec.submodule_search_locations)[0], "atari", "roms")
    if not os.path.isdir(roms):
        return ()
    stems = sorted(f[:-4] for f in os.listdir(roms) if f.endswith(".bin"))
    return tuple("".join(part.capitalize() for part in stem.split("_")) for stem in stems)


def game_name(name: str) -> str | None:
    """'Pong' or 'Pong-v5' -> 'Pong' if EnvPool ships the game, else None."""
    base = name[:-3] if name.endswith("-v5") else name
    return base if base in atari_games() else None


_POOLS: dict = {}
_POOLS_LOCK = threading.Lock()


class _Pool:
    """One EnvPool of n envs (sync mode) and its XLA step."""

    def __init__(self, game: str, n: int, seed: int, options: dict):
        import envpool

        self.env = envpool.make(f"{game}-v5", env_type="gymnasium", num_envs=n, batch_size=n,
                                seed=seed, **options)
        self.n = n
        self.handle, _, _, self.xla_step = self.env.xla()

    def reset_host(self) -> np.ndarray:
        """Reset every env (new episodes); observations uint8 [n, 84, 84, 4]."""
        obs, _ = self.env.reset()
        return np.ascontiguousarray(np.moveaxis(obs, 1, -1))


def _batch_token(key: jax.Array) -> jax.Array:
    """A scalar that is batched exactly when `key` is: under `vmap` over runs, it makes the
    reset's batching rule see the runs axis (a function of no batched input is not batched)."""
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return jnp.asarray(data).ravel()[0].astype(jnp.uint32) & jnp.uint32(0)


class EnvPoolAtari(Env):
    """An ALE game through EnvPool (see the module docstring for the folding of the runs axis).

    Options: seed (base env seed, default 0), max_episode_steps (27000 agent steps),
    repeat_action_probability (sticky actions, 0.25), frame_skip (4).
    """

    pixel_obs = True
    checkpointable = False
    frame_stack = 4

    def __init__(self, name: str, num_envs: int = 1, seed: int = 0, max_episode_steps: int = 27_000,
                 repeat_action_probability: float = 0.25, frame_skip: int = 4):
        game = game_name(name)
        if game is None:
            raise ValueError(f"unknown Atari game {name!r}; EnvPool ships: {', '.join(atari_games())}")
        for key, value, ok in (("seed", seed, isinstance(seed, int) and seed >= 0),
                               ("max_episode_steps", max_episode_steps,
                                isinstance(max_episode_steps, int) and max_episode_steps >= 1),
                               ("frame_skip", frame_skip, isinstance(frame_skip, int) and frame_skip >= 1),
                               ("repeat_action_probability", repeat_action_probability,
                                isinstance(repeat_action_probability, (int, float))
                                and 0 <= repeat_action_probability <= 1)):
            if isinstance(value, bool) or not ok:
                raise ValueError(f"{game}: {key} got {value!r}; allowed: "
                                 + ("a probability in [0, 1]" if key.startswith("repeat") else
                                    "an integer >= 0" if key == "seed" else "an integer >= 1"))
        self.name = game
        self.num_envs = int(num_envs)
        self.seed = seed
        self.stream = 0
        self.overrides = dict(seed=seed, max_episode_steps=max_episode_steps,
                              repeat_action_probability=repeat_action_probability, frame_skip=frame_skip)
        self.options = {**DOPAMINE_OPTIONS, "max_episode_steps": max_episode_steps,
                        "repeat_action_probability": float(repeat_action_probability),
                        "frame_skip": frame_skip}
        self.max_episode_steps = int(max_episode_steps)
        self.obs_shape = (84, 84, 4)
        self.action_space = Discrete(self._num_actions())
        self._reset_fn, self._step_fn = self._folded_functions()

    def _num_actions(self) -> int:
        import envpool

        spec = envpool.make_spec(f"{self.name}-v5", **self.options)
        return int(spec.action_space.n)

    # ---- identity: copies for another env count get their own stream (their own pools) ----
    def with_num_envs(self, num_envs: int) -> "EnvPoolAtari":
        """This game batched over `num_envs`, on its own pools (evaluation never shares training envs)."""
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if int(num_envs) == self.num_envs:
            return self
        new = super().with_num_envs(num_envs)
        new.stream = self.stream + 1
        new._reset_fn, new._step_fn = new._folded_functions()
        return new

    def _key(self):
        return (*super()._key(), self.stream)

    def pool(self, runs: int) -> _Pool:
        """The pool serving `runs` runs of this env (created and reset on first use)."""
        key = (self.name, tuple(sorted(self.options.items())), self.num_envs, int(runs), self.seed, self.stream)
        with _POOLS_LOCK:
            if key not in _POOLS:
                pool = _Pool(self.name, self.num_envs * int(runs),
                             self.seed + self.stream * STREAM_SEED_STRIDE, self.options)
                pool.reset_host()
                _POOLS[key] = pool
            return _POOLS[key]

    # ---- the folded reset and step ----
    def _folded_functions(self):
        e = self.num_envs

        def reset_pool(runs: int):
            pool = self.pool(runs)
            shape = jax.ShapeDtypeStruct((pool.n, *self.obs_shape), jnp.uint8)
            obs = io_callback(pool.reset_host, shape, ordered=False)
            handle = jnp.asarray(pool.handle)
            return handle, obs.reshape(runs, e, *self.obs_shape)

        def step_pool(runs: int, handle, action):
            pool = self.pool(runs)
            handle, (obs, reward, terminated, truncated, info) = pool.xla_step(
                handle, action.reshape(runs * e).astype(jnp.int32))
            fold = lambda x: x.reshape(runs, e, *x.shape[1:])
            obs = jnp.moveaxis(obs, 1, -1)
            return handle, (fold(obs), fold(reward.astype(jnp.float32)), fold(terminated),
                            fold(truncated), fold(info["elapsed_step"].astype(jnp.int32)))

        @jax.custom_batching.custom_vmap
        def reset(token):
            handle, obs = reset_pool(1)
            return handle, obs[0]

        @reset.def_vmap
        def reset_rule(axis_size, in_batched, token):
            handle, obs = reset_pool(axis_size)
            return (jnp.broadcast_to(handle, (axis_size, *handle.shape)), obs), (True, True)

        @jax.custom_batching.custom_vmap
        def step(handle, action):
            handle, out = step_pool(1, handle, action[None])
            return handle, jax.tree.map(lambda x: x[0], out)

        @step.def_vmap
        def step_rule(axis_size, in_batched, handle, action):
            handle_batched, action_batched = in_batched
            if handle_batched:
                handle = handle[0]  # the same token in every run
            if not action_batched:
                action = jnp.broadcast_to(action, (axis_size, *action.shape))
            handle, out = step_pool(axis_size, handle, action)
            handle = jnp.broadcast_to(handle, (axis_size, *handle.shape))
            return (handle, out), (True, jax.tree.map(lambda _: True, out))

        return reset, step

    # ---- public API ----
    def reset(self, key: jax.Array) -> tuple[EnvState, jax.Array]:
        """New episodes in this run's envs. `key` is unused: EnvPool seeds its own envs."""
        handle, obs = self._reset_fn(_batch_token(key))
        return EnvState(inner=handle, step=jnp.zeros((self.num_envs,), jnp.int32)), obs

    def step(self, key: jax.Array, state: EnvState, action: jax.Array):
        """Step this run's envs (all runs in one pool call under vmap); `key` is unused.

        Returns (state, obs uint8 [E, 84, 84, 4], raw reward float32 [E], terminated [E],
        truncated [E], info) with info["valid"] False on EnvPool's delayed reset steps and
        info["final_obs"] = obs (the end of an episode is observed before its reset step).
        """
        action = self._prepare_action(action)
        handle, (obs, reward, terminated, truncated, elapsed) = self._step_fn(state.inner, action)
        valid = elapsed > 0
        state = EnvState(inner=handle, step=elapsed)
        return state, obs, reward, terminated, truncated, {"final_obs": obs, "valid": valid}
