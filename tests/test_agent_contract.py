"""Every agent keeps the contract the package reads it by (agents/contract.py): each member the
protocol declares is there and implemented below it, the state holds a key and `replace`, and
run, state_groups and policy_inputs answer in the shapes the contract says (traced only)."""

import dataclasses
import inspect

import jax
import pytest

import purejaxsparse as pjs
from purejaxsparse.agents import AGENTS, Agent, AgentContract, AgentState
from purejaxsparse.agents.base import METRICS, STATE_GROUPS
from purejaxsparse.fields import field_specs

CONFIGS = {
    "dqn": {"agent": "dqn", "env": "CartPole-v1", "total_steps": 40, "eval_every": 20, "eval_episodes": 1,
            "agent_config": {"hidden": [8], "batch_size": 4, "buffer_size": 50, "learning_starts": 10}},
    "ppo": {"agent": "ppo", "env": "CartPole-v1", "total_steps": 32, "eval_every": 16, "eval_episodes": 1,
            "agent_config": {"hidden": [8], "num_envs": 2, "rollout_steps": 8, "minibatch_size": 8, "epochs": 1}},
    "sac": {"agent": "sac", "env": "Pendulum-v1", "total_steps": 40, "eval_every": 20, "eval_episodes": 1,
            "agent_config": {"hidden": [8], "batch_size": 4, "buffer_size": 50, "learning_starts": 10}},
}
DECLARED = sorted(set(AgentContract.__annotations__) | {n for n in vars(AgentContract) if not n.startswith("_")})
"""Every member the protocol declares: its attributes, properties and methods."""


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def built(request):
    """(agent, default hparams, the initial state's shapes with each leaf's key path as its label)."""
    train = pjs.make_train(CONFIGS[request.param])
    hp = train.hparams()
    shapes = jax.eval_shape(train.agent.init, jax.random.PRNGKey(0), hp)
    return train.agent, hp, shapes


def test_the_contract_lists_what_the_package_reads():
    assert set(CONFIGS) == set(AGENTS)
    for member in ("name", "HParams", "Static", "method_defaults", "init", "run", "evaluate", "state_groups",
                   "policy_inputs", "policy_arrays", "optimizer_steps", "num_evals"):
        assert member in DECLARED, member
    assert set(AgentState.__annotations__) == {"key"} and callable(AgentState.replace)


def test_every_agent_implements_every_member(built):
    agent, _, _ = built
    assert isinstance(agent, AgentContract) and isinstance(agent, Agent)
    for member in DECLARED:
        assert hasattr(agent, member), member
        if member in vars(AgentContract):  # a method or property: implemented, not the protocol's stub
            assert inspect.getattr_static(type(agent), member) is not vars(AgentContract)[member], member
    assert AGENTS[agent.name] is type(agent)
    assert dataclasses.is_dataclass(agent.HParams) and "method" in field_specs(agent.HParams)
    assert isinstance(agent.static, agent.Static) and dataclasses.is_dataclass(agent.Static)
    assert all(set(values) <= set(field_specs(agent.HParams)) for values in agent.method_defaults.values())
    config = CONFIGS[agent.name]
    assert agent.num_evals == config["total_steps"] // config["eval_every"] == 2
    steps, how = agent.optimizer_steps()
    assert isinstance(steps, int) and steps >= 0 and how


def test_the_state_its_groups_and_the_policy_inputs(built):
    agent, hp, shapes = built
    assert isinstance(shapes, AgentState)
    assert shapes.replace(key=None).key is None and shapes.key.shape == jax.random.PRNGKey(0).shape
    labelled = jax.tree_util.tree_map_with_path(lambda path, _: jax.tree_util.keystr(path), shapes)
    every = sorted(jax.tree.leaves(labelled))
    groups = agent.state_groups(labelled)
    assert set(groups) == set(STATE_GROUPS)
    assert sorted(label for g in groups.values() for label in jax.tree.leaves(g)) == every  # a partition
    inputs = set(jax.tree.leaves(agent.policy_inputs(labelled)))
    assert inputs and inputs <= set(every) and not inputs & set(jax.tree.leaves(groups["replay"]))
    assert inputs & set(jax.tree.leaves(groups["params"])) and inputs & set(jax.tree.leaves(groups["masks"]))


def test_run_reports_each_metric_per_evaluation(built):
    agent, hp, shapes = built
    state, metrics = jax.eval_shape(lambda s: agent.run(s, hp, 0, 2), shapes)
    assert jax.tree.structure(state) == jax.tree.structure(shapes)
    assert set(metrics) == set(agent.metric_names) | {"step"} and set(METRICS) <= set(metrics)
    assert all(m.shape == (2,) for m in metrics.values())


def test_an_agent_that_leaves_a_member_out_cannot_be_built():
    assert Agent.__abstractmethods__ == {"init", "iteration", "evaluate", "eval_policy", "networks",
                                         "sparse_networks", "final_active_params", "optimizer_steps",
                                         "state_groups", "policy_inputs", "policy_arrays"}

    class NoPolicy(Agent):
        init = iteration = evaluate = eval_policy = networks = sparse_networks = lambda *_: None
        final_active_params = optimizer_steps = state_groups = policy_arrays = lambda *_: None

    with pytest.raises(TypeError, match="policy_inputs"):
        NoPolicy(None, None, None, 1, 1, 1)
