"""Running mean and variance of a stream (parallel Welford) and TF-Agents' normaliser built on
them: PPO's observation and reward normalisation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RunningStats:
    """Running mean and variance (parallel Welford), e.g. of observations."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, shape=()):
        return cls(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), jnp.float32(1e-4))

    def update(self, batch) -> "RunningStats":
        """Merge a batch [N, *shape]."""
        batch = batch.reshape(-1, *self.mean.shape).astype(jnp.float32)
        n = jnp.float32(batch.shape[0])
        b_mean, b_var = batch.mean(0), batch.var(0)
        delta = b_mean - self.mean
        total = self.count + n
        mean = self.mean + delta * n / total
        m2 = self.var * self.count + b_var * n + delta * delta * self.count * n / total
        return RunningStats(mean, m2 / total, total)


NORM_EPS = 1e-3  # TF-Agents TensorNormalizer.normalize variance_epsilon


def tf_normalizer(shape=()) -> RunningStats:
    """Empty statistics as TF-Agents' StreamingTensorNormalizer: mean 0, var 0, count 1e-8."""
    return RunningStats(jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.float32), jnp.float32(1e-8))


def normalize(stats: RunningStats, x, clip, center=True, eps=NORM_EPS):
    """TF-Agents' TensorNormalizer.normalize: clip((x - mean) / sqrt(var + eps), +-clip), mean 0
    if not center."""
    mean = stats.mean if center else 0.0
    return jnp.clip((x - mean) / jnp.sqrt(stats.var + eps), -clip, clip)
