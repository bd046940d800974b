"""Where a sweep chunk's time goes: one compiled chunk of a config, traced with jax.profiler.

Plans the sweep as `purejaxsparse run` does, initialises its runs on one device and compiles
the engine's own chunk function (`purejaxsparse.sweep.chunk_function`: jit of vmap of
`agent.run`, state donated). Runs the chunks that fill the replay buffer untimed, times the
next chunk, then runs one more under `jax.profiler.trace` and writes to OUT (an environment
variable; default ./gpu_out):

- profile_chunk.txt: settings, compile and chunk seconds, XLA's cost analysis (flops, bytes),
  instruction counts of the optimized HLO by opcode, and per-op time tables from the trace: for
  each timeline of the trace (a GPU stream, an XLA:CPU thread, ...), the events that took the
  most time (on a GPU: the kernels, named after the HLO fusions in chunk_hlo.txt);
- chunk_hlo.txt: the optimized HLO of the chunk (`compiled.as_text()`);
- profile_trace.tar.gz: the trace folder (`.xplane.pb` for XProf/TensorBoard; with --perfetto
  also `perfetto_trace.json.gz` for ui.perfetto.dev), left out if over --max-trace-mib.

    python benchmarks/profile_chunk.py --quick     # 5 runs, tiny chunk: checks the script on a CPU
    python benchmarks/profile_chunk.py             # configs/quickstart.yaml as it is (15 runs, 2000 steps)
    python benchmarks/profile_chunk.py configs/dqn_cartpole.yaml chunk_evals=1
    python benchmarks/profile_chunk.py --smoke --out /tmp/p   # MLP 8, 200-step chunks: runs end to end

Extra arguments after the config are `dotted.key=value` overrides, as for `purejaxsparse run`.
Last line: `ratio: X` = traced chunk seconds / timed chunk seconds (what the profiler
costs the chunk it traces).
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import re
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK_OVERRIDES = ["total_steps=1000", "eval_every=200", "eval_episodes=2", "chunk_evals=1",
                   "agent_config.buffer_size=1000", "agent_config.learning_starts=200",
                   "agent_config.hidden=[64,64]", "hparams.end=800", "method_defaults.prune.start=400",
                   "sweep.seed=1"]
SMOKE_OVERRIDES = ["total_steps=600", "eval_every=200", "eval_episodes=2", "chunk_evals=1",
                   "agent_config.buffer_size=300", "agent_config.learning_starts=200",
                   "agent_config.hidden=[8]", "agent_config.batch_size=8", "hparams.end=400",
                   "method_defaults.prune.start=200", "sweep.seed=1"]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("config", nargs="?", default=str(ROOT / "configs" / "quickstart.yaml"))
    ap.add_argument("overrides", nargs="*", help="dotted.key=value overrides of the config")
    ap.add_argument("--quick", action="store_true",
                    help="a tiny chunk (" + " ".join(QUICK_OVERRIDES) + ") to check the script on a CPU")
    ap.add_argument("--smoke", action="store_true",
                    help="the tiniest chunk that still runs the whole script (" + " ".join(SMOKE_OVERRIDES) +
                         "): checks that it works; its numbers mean nothing")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu_out"),
                    help="output folder (default: $OUT, else ./gpu_out)")
    ap.add_argument("--top", type=int, default=30, help="rows per per-op table")
    ap.add_argument("--timelines", type=int, default=6, help="timelines (busiest first) with a table")
    ap.add_argument("--perfetto", action="store_true",
                    help="also write perfetto_trace.json.gz into the trace (slow and large)")
    ap.add_argument("--max-trace-mib", type=float, default=15.0,
                    help="leave the trace archive out above this size (the device returns files "
                         "of at most 16 MiB)")
    args = ap.parse_args(argv)
    if args.smoke or args.quick:
        args.overrides = (SMOKE_OVERRIDES if args.smoke else QUICK_OVERRIDES) + args.overrides
    return args


# ---------------------------------------------------------------------------------------------
# HLO and trace summaries
_OPCODE = re.compile(r"\b([a-z][a-z0-9_-]*)\(")


def hlo_opcode_counts(hlo_text: str) -> collections.Counter:
    """Instruction counts by opcode in HLO text (every computation, fusion bodies included)."""
    counts = collections.Counter()
    for line in hlo_text.splitlines():
        lhs, eq, rhs = line.partition(" = ")
        if not eq or line.lstrip().startswith(("HloModule", "//")):
            continue
        m = _OPCODE.search(rhs)
        if m:
            counts[m.group(1)] += 1
    return counts


def timeline_tables(timelines: dict, top: int, show: int) -> str:
    """Per-op time tables: {(plane, line): {event name: [count, ns]}} -> Markdown, busiest first."""
    timelines = {k: v for k, v in timelines.items() if v}
    if not timelines:
        return "(the trace has no timed events)\n"
    busiest = sorted(timelines.items(), key=lambda kv: -sum(v[1] for v in kv[1].values()))
    out = [f"{len(timelines)} timelines in the trace; the {min(show, len(timelines))} with the most event "
           f"time follow (nested events each count, so a timeline's rows can add up to more than its "
           f"wall time):", ""]
    for (plane, line), ops in busiest[:show]:
        total = sum(v[1] for v in ops.values())
        n = sum(v[0] for v in ops.values())
        out.append(f"### {plane} / {line}: {n:,} events, {total / 1e6:,.2f} ms in all, {len(ops):,} names")
        out.append("")
        out.append("| op | count | total ms | mean us | % of timeline |")
        out.append("|---|---|---|---|---|")
        for name, (count, dur) in sorted(ops.items(), key=lambda kv: -kv[1][1])[:top]:
            short = name if len(name) <= 80 else name[:77] + "..."
            out.append(f"| `{short}` | {count:,} | {dur / 1e6:,.3f} | {dur / 1e3 / count:,.1f} | "
                       f"{100 * dur / max(total, 1e-9):.1f}% |")
        out.append("")
    return "\n".join(out) + "\n"


def read_timelines(trace_dir: Path) -> dict:
    """{(plane name, line name): {event name: [count, total ns]}} of the trace's .xplane.pb."""
    from jax.profiler import ProfileData
    found = sorted(trace_dir.rglob("*.xplane.pb"))
    if not found:
        return {}
    data = ProfileData.from_file(str(found[-1]))
    timelines = collections.defaultdict(lambda: collections.defaultdict(lambda: [0, 0.0]))
    for plane in data.planes:
        for line in plane.lines:
            ops = timelines[(plane.name, line.name)]
            for event in line.events:
                slot = ops[event.name]
                slot[0] += 1
                slot[1] += float(event.duration_ns)
    return timelines


# ---------------------------------------------------------------------------------------------
def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, str(ROOT))
    from purejaxsparse import sweep
    from purejaxsparse.config import apply_overrides, load_config, plan_sweep

    report = []

    def say(line=""):
        print(line, flush=True)
        report.append(line)

    plan = plan_sweep(apply_overrides(load_config(args.config), args.overrides))
    agent = plan.agent
    steps_per_chunk = plan.chunk_evals * agent.eval_every
    learning_starts = getattr(getattr(agent, "static", None), "learning_starts", 0) or 0
    first = max(1, math.ceil(learning_starts / steps_per_chunk))  # first chunk fully past warm-up
    if plan.num_chunks < first + 2:
        sys.exit(f"profile_chunk: {plan.num_chunks} chunks of {steps_per_chunk} env steps; need "
                 f"{first + 2} (warm-up through step {learning_starts}, then a timed and a traced "
                 f"chunk): raise total_steps or lower chunk_evals")
    devices = jax.devices()
    say(f"# profile_chunk: {args.config} {' '.join(args.overrides)}".rstrip())
    say(f"# python {sys.version.split()[0]} | jax {jax.__version__} | {len(devices)} x "
        f"{devices[0].platform.upper()} ({getattr(devices[0], 'device_kind', '')})")
    say(f"# {plan.num_runs} runs of {agent.name} on {sweep.env_name(plan.config)}, one chunk = "
        f"{plan.chunk_evals} evaluation(s) x {agent.eval_every} env steps = {steps_per_chunk:,} env steps "
        f"per run; chunks 0..{first - 1} untimed (replay warm-up), chunk {first} timed, "
        f"chunk {first + 1} traced")

    # on the default device (as the benchmarks do; the sweep engine also shards the runs over
    # every device, which on one device is the same program)
    keys, hparams = plan.keys, plan.hparams
    states = jax.jit(jax.vmap(agent.init))(keys, hparams)
    chunk = sweep.chunk_function(agent, plan.chunk_evals)
    t = time.perf_counter()
    lowered = chunk.lower(states, hparams, jnp.int32(0))
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t
    hlo = compiled.as_text()
    (args.out / "chunk_hlo.txt").write_text(hlo)

    def run(c):
        nonlocal states
        states, metrics = compiled(states, hparams, jnp.int32(c * plan.chunk_evals * agent.iterations_per_eval))
        return jax.block_until_ready((states, metrics))

    for c in range(first):
        run(c)
    t = time.perf_counter()
    run(first)
    chunk_s = time.perf_counter() - t
    steps = plan.num_runs * steps_per_chunk
    say(f"compile {compile_s:.1f} s; timed chunk {chunk_s:.3f} s = {steps / chunk_s:,.0f} env steps/s "
        f"({plan.num_runs} runs), {1e6 * chunk_s / (plan.chunk_evals * agent.iterations_per_eval):,.1f} "
        f"us per iteration of all runs")

    with tempfile.TemporaryDirectory() as tmp:
        trace_dir = Path(tmp) / "trace"
        options = jax.profiler.ProfileOptions()
        options.python_tracer_level = 0  # Python frames: the chunk is one compiled call
        t = time.perf_counter()
        with jax.profiler.trace(str(trace_dir), create_perfetto_trace=args.perfetto,
                                profiler_options=options):
            run(first + 1)
        traced_s = time.perf_counter() - t
        say(f"traced chunk {traced_s:.3f} s (with the profiler on): "
            f"{traced_s / chunk_s:.2f}x the timed chunk")
        say("")

        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) and cost else cost
        if cost:
            flops, nbytes = cost.get("flops", 0.0), cost.get("bytes accessed", 0.0)
            say(f"XLA cost analysis of the chunk (a while loop's body counted once, so these are per "
                f"loop trip, not per chunk): {flops:,.0f} flops, {nbytes:,.0f} bytes accessed")
        counts = hlo_opcode_counts(hlo)
        say(f"optimized HLO: {len(hlo.splitlines()):,} lines, {sum(counts.values()):,} instructions; "
            f"by opcode (top 25): " + ", ".join(f"{k} {v}" for k, v in counts.most_common(25)))
        say("")

        tables = timeline_tables(read_timelines(trace_dir), args.top, args.timelines)
        say("## Per-op time in the traced chunk")
        say("")
        for line in tables.rstrip("\n").splitlines():
            say(line)

        archive = args.out / "profile_trace.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(trace_dir, arcname="trace")
        mib = archive.stat().st_size / 2**20
        if mib > args.max_trace_mib:
            archive.unlink()
            say(f"trace archive {mib:.1f} MiB is over --max-trace-mib {args.max_trace_mib}: left out "
                f"(lower chunk_evals to trace a shorter chunk)")
        else:
            say(f"trace: {archive} ({mib:.1f} MiB; tar xzf it, then point XProf/TensorBoard's profile "
                f"plugin at trace/, or with --perfetto open trace/**/perfetto_trace.json.gz in ui.perfetto.dev)")
    (args.out / "profile_chunk.txt").write_text("\n".join(report) + "\n")
    print(f"wrote {args.out}/profile_chunk.txt, chunk_hlo.txt" + (", profile_trace.tar.gz" if archive.exists() else ""))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import benchlib as bl
    bl.print_ratio(args, traced_s / chunk_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
