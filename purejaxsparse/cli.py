"""Command line: `purejaxsparse run|resume|report|robustness|merge|export` (export: one run's
policy as a numpy-only file, export_writer.py).

Bad input (unknown key/agent/env/method, values or options out of range, malformed YAML or a
duplicate key, a YAML file beyond bounds (config_yaml.py: size, nesting, aliases) or with a key
that is not a string, a binary file, missing file, wrong type, a network too large to count in
int32, an existing non-empty --out, a sweep directory missing one of its files, a sweep whose
state does not fit the device's memory, a sweep directory another process is writing) prints one
line naming the field and what is allowed, exits with code 2, and leaves no output directory
behind. A path that cannot be written (read-only, forbidden or immutable, a parent that is a
file, a dangling symbolic link; checked before any work) or a full disk: one line naming the
path and the fix, exit code 1 (disk.py). SIGINT (Ctrl-C) and SIGTERM, at any moment (a signal
while the chunk compiles: as soon as the compiler returns): one line, exit code 130 or 143,
later signals ignored; either way the sweep stays resumable (interrupt.py). `run --dry-run`
prints the plan and its memory estimate and writes nothing. `run` and `resume` end a completed
sweep by printing its summary (with how many runs diverged) and writing its report,
DIR/report/index.html, whose path they print (`--no-report`: not).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

EXIT_DISK = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _default_config() -> Path:
    """configs/quickstart.yaml of the working directory, else of the source checkout."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = root / "configs" / "quickstart.yaml"
        if candidate.is_file():
            return candidate
    from .fields import ConfigError
    raise ConfigError("config: no CONFIG given and no configs/quickstart.yaml here or in the source checkout")


def _split_run_args(items: list[str]) -> tuple[Path | None, list[str]]:
    config, overrides = None, []
    for i, item in enumerate(items):
        if i == 0 and "=" not in item:
            config = Path(item)
        else:
            overrides.append(item)
    return config, overrides


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="purejaxsparse", description=(
        "Sparse training for deep RL: a whole sweep (seeds x methods x sparsities x ...) as one "
        "jit-compiled, vmapped JAX program."))
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a sweep from a YAML config",
                         description="Run a sweep. Overrides are dotted.key=value with YAML values, "
                                     "e.g. sweep.sparsity=[0.8,0.9] total_steps=20000.")
    run.add_argument("args", nargs="*", metavar="[CONFIG] [dotted.key=value ...]",
                     help="config file (default: configs/quickstart.yaml), then overrides")
    run.add_argument("--out", type=Path, help="output directory (new or empty; default runs/NAME-TIME)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--no-report", action="store_true",
                     help="do not write OUT/report/index.html when the sweep completes (make it later with: report OUT)")
    run.add_argument("--distributed", action="store_true",
                     help="multi-host: call jax.distributed.initialize() first (every host runs the same command)")
    run.add_argument("--dry-run", action="store_true",
                     help="plan the sweep, print its runs and memory estimate, and exit (nothing compiled or written)")
    run.add_argument("--device-memory", metavar="SIZE",
                     help="memory of each device (CPU: of the host) to size the sweep for, e.g. 80GB, "
                          "instead of what JAX reports (with --dry-run: how many runs fit a GPU)")
    run.add_argument("--log", action="append", metavar="LOGGER",
                     help="log every run live to tensorboard (OUT/tensorboard/) or wandb (the wandb extra); "
                          "repeat or comma-separate; adds to the config's logging: mapping; none: no logging")
    res = sub.add_parser("resume", help="continue an interrupted sweep")
    res.add_argument("dir", type=Path)
    res.add_argument("--no-progress", action="store_true")
    res.add_argument("--no-report", action="store_true", help="do not write the report when the sweep completes")
    res.add_argument("--distributed", action="store_true", help="multi-host, as for run")
    res.add_argument("--log", action="append", metavar="LOGGER",
                     help="add live loggers to those the sweep has (tensorboard, wandb), or none: log nothing")
    rep = sub.add_parser("report", help="statistics and plots of a sweep directory (DIR/report/)")
    rep.add_argument("dir", type=Path)
    rep.add_argument("--reps", default=2000, help="bootstrap resamples (default 2000)")
    rep.add_argument("--seed", default=0, help="bootstrap seed (default 0)")
    mrg = sub.add_parser("merge", help="combine sweeps of one study (e.g. one per seed or env) for one report",
                         description="Write runs.csv, results.csv and config.yaml of several sweep directories "
                                     "whose configs differ only in name, env and sweep grid into OUT, runs "
                                     "renumbered; then: purejaxsparse report OUT (one panel per env).")
    mrg.add_argument("out", type=Path, help="new (or empty) directory")
    mrg.add_argument("dirs", type=Path, nargs="+", help="sweep directories, in the order their runs are numbered")
    rob = sub.add_parser("robustness", help="evaluate final params with Gaussian observation noise")
    rob.add_argument("dir", type=Path)
    rob.add_argument("--sigma", default="0,0.1,0.2,0.5,1.0",
                     help="comma-separated noise std devs (pixels: on raw 0..255 values)")
    rob.add_argument("--episodes", default=None, help="episodes per sigma (default: eval_episodes)")
    exp = sub.add_parser("export", help="write one run's policy as a numpy-only file (sparse kernels as CSR)",
                         description="Export the policy of run N of a finished sweep (latest checkpoint) to "
                                     "an .npz that purejaxsparse.export.load_policy runs with numpy alone.")
    exp.add_argument("dir", type=Path)
    exp.add_argument("--run", required=True, help="run index (runs.csv's run column)")
    exp.add_argument("--out", type=Path, required=True, help="file to write (e.g. policy.npz)")
    exp.add_argument("--csr-max-density", default=None,
                     help="store a kernel as CSR when at most this fraction is non-zero, else dense "
                          "(default: export_writer.CSR_MAX_DENSITY)")
    return p


def _quiet_libraries() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*unmaintained.*")


def _cmd_run(args) -> int:
    from . import disk
    from .config import apply_overrides, load_config, plan_sweep
    from .fields import ConfigError
    from .memory import parse_bytes
    from .loggers import requested, with_loggers
    from .sweep_lock import check_out_dir

    config_path, overrides = _split_run_args(args.args)
    config_path = config_path or _default_config()
    config = apply_overrides(load_config(config_path), overrides)
    config.setdefault("name", config_path.stem)
    loggers = requested(args.log, config)
    plan = plan_sweep(with_loggers(config, loggers))  # config.yaml records them for resume
    device_memory = None if args.device_memory is None else parse_bytes(args.device_memory, "--device-memory")
    if args.dry_run:
        return _dry_run(plan, device_memory)
    if args.distributed and not args.out:
        raise ConfigError("--out: required with --distributed (every host must write to the same shared directory)")
    out = args.out or Path("runs") / f"{config['name']}-{time.strftime('%Y%m%d-%H%M%S')}"
    args.sweep_dir = out
    if _is_primary():
        check_out_dir(out)
        disk.check_dir(out, "making the sweep directory", then="run again (or choose another --out)")
    _note_duplicates(plan)
    return _train(plan, out, resume=False, progress=not args.no_progress, report=not args.no_report,
                  device_memory=device_memory, loggers=loggers)


def _note_duplicates(plan) -> None:
    if plan.duplicates:
        print(f"note: {plan.duplicates} combinations were the same run (settings that do not apply to "
              f"their method, e.g. sparsity for dense) and run once")


def _dry_run(plan, device_memory) -> int:
    """The sweep's plan and memory estimate; exit 0 if its state fits, else the refusal (exit 2)."""
    from . import memory
    from .sweep import describe, sweep_devices

    _note_duplicates(plan)
    estimate = memory.estimate(plan, device_memory, num_devices=len(sweep_devices(plan.agent)))
    print(describe(plan))
    print(estimate.table())
    memory.check(estimate)
    print("dry run: nothing compiled or written (the compiled chunk's temporaries are checked when it runs)")
    return 0


def _cmd_resume(args) -> int:
    from .loggers import requested
    from .results import SWEEP_FILES
    from .store import SweepDir

    args.sweep_dir = args.dir
    store = SweepDir(args.dir)
    plan = store.plan("resume", needs=SWEEP_FILES)
    if _is_primary():
        store.check_writable()
    loggers = requested(args.log, plan.config)
    return _train(plan, args.dir, resume=True, progress=not args.no_progress, report=not args.no_report,
                  loggers=loggers)


def _is_primary() -> bool:
    import jax
    return jax.process_index() == 0


def _train(plan, out: Path, resume: bool, progress: bool, report: bool = True, device_memory=None,
           loggers=()) -> int:
    """Run (or resume) the sweep to its end, logging it live to `loggers` (process 0 alone);
    then print its summary and write its report."""
    from .analysis.report import summary_table, write_report
    from .loggers import sweep_logging
    from .sweep import run_sweep

    with sweep_logging(loggers if _is_primary() else (), out, plan) as on_chunk:
        stats = run_sweep(plan, out, resume=resume, progress=progress, device_memory=device_memory,
                          on_chunk=on_chunk)
    if not _is_primary():
        return 0
    if stats.chunks_run:
        print(f"trained {stats.env_steps:,} env steps in {stats.run_seconds:.1f} s "
              f"({stats.steps_per_second:,.0f} steps/s, + {stats.compile_seconds:.1f} s compile)")
    print("\nfinal score = mean eval return over the last 10% of evaluations, mean over seeds:")
    print(summary_table(out))
    print(f"\nresults: {out / 'results.csv'}")
    if not report:
        print(f"report:  purejaxsparse report {out}")
        return 0
    try:
        print(f"report:  {write_report(out)}")
    except (OSError, ValueError) as e:  # the sweep itself is done and saved: say why, exit 0
        print(f"report not written ({str(e).splitlines()[0]}); try: purejaxsparse report {out}", file=sys.stderr)
    return 0


def _cmd_report(args) -> int:
    from . import disk
    from .analysis.report import write_report

    if Path(args.dir).is_dir():  # else not a sweep: write_report says so
        disk.check_dir(Path(args.dir) / "report", "writing the report into")
    path = write_report(args.dir, reps=args.reps, seed=args.seed)
    print(f"report written: {path}")
    return 0


def _cmd_merge(args) -> int:
    from . import disk
    from .merge import merge_sweeps, setting_defaults

    disk.check_dir(args.out, "writing the merged sweep into")
    merged = merge_sweeps(args.out, args.dirs, defaults=setting_defaults(args.dirs[0]))
    envs = merged["env"] if isinstance(merged["env"], list) else [merged["env"]]
    for source, names in (merged.get("filled") or {}).items():
        print(f"merge: {source} predates {', '.join(names)}; its runs take the default(s)")
    print(f"merged {len(args.dirs)} sweeps ({len(envs)} env(s), seeds {merged['sweep']['seed']}) into {args.out}; "
          f"report: purejaxsparse report {args.out}")
    return 0


def _cmd_robustness(args) -> int:
    from . import disk
    from .robustness import run_robustness

    if Path(args.dir).is_dir():  # else not a sweep: run_robustness says so
        disk.check_dir(Path(args.dir) / "report", "writing the robustness table into")
    path = run_robustness(args.dir, args.sigma, episodes=args.episodes)
    print(f"robustness written: {path}")
    return 0


def _cmd_export(args) -> int:
    from . import disk
    from .export_writer import CSR_MAX_DENSITY, export_run

    disk.check_file(args.out, "writing the policy to")
    density = CSR_MAX_DENSITY if args.csr_max_density is None else args.csr_max_density
    meta = export_run(args.dir, args.run, args.out, csr_max_density=density)
    layers = ", ".join(f"{layer['in']}x{layer['out']} {layer['format']} {layer['density']:.1%}"
                       for layer in meta["layers"])
    print(f"exported run {meta['run']} ({meta['agent']} {meta['method']}, sparsity {meta['sparsity']}, "
          f"seed {meta['seed']}, step {meta['step']:,}) to {args.out}: {layers}; "
          f"{meta['active_params']:,} of {meta['kernel_params']:,} kernel weights")
    return 0


def _check_options(args) -> None:
    """Convert each numeric option (given as text) and check it as a config value is checked
    (fields.Field), so a bad one is a one-line ConfigError naming it. --sigma: a comma-separated
    list of values."""
    from .errors import shown
    from .fields import ConfigError, Field

    specs = {"reps": Field("int", 2000, low=1, high=100_000), "seed": Field("int", 0, low=0),
             "sigma": Field("float", 0.0, low=0, high=1e6), "episodes": Field("int", None, low=1, high=100_000),
             "run": Field("int", 0), "csr_max_density": Field("float", None, low=0, high=1)}
    for name, spec in specs.items():
        given = getattr(args, name, None)
        if given is None:
            continue
        flag = "--" + name.replace("_", "-")
        texts = [t for t in str(given).split(",") if t.strip()] if name == "sigma" else [given]
        if not texts:
            raise ConfigError(f"{flag}: got {shown(given)}; allowed: comma-separated numbers, each {spec.allowed()}")
        values = []
        for text in texts:
            value = _number(text)
            spec.convert(flag, value)
            values.append(int(value) if spec.kind == "int" else float(value))
        setattr(args, name, values if name == "sigma" else values[0])


def _number(text):
    """An option's text as an int, else a float, else the text itself (for the error)."""
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            pass
    return text


COMMANDS = {"run": _cmd_run, "resume": _cmd_resume, "report": _cmd_report, "merge": _cmd_merge,
            "robustness": _cmd_robustness,
            "export": _cmd_export}


def main(argv=None) -> int:
    """Run one command; returns its exit code. argv None: the process's own command line, and
    the process ends when main returns, so SIGINT and SIGTERM stay ignored after it (an exit
    handler is never cut short into a traceback), and an interrupted one ends at once
    (interrupt.end_process)."""
    from .interrupt import end_process, stop_on_signal

    with stop_on_signal(ending=argv is None) as stop:
        args = None
        try:
            args = _parse(argv)
            code = _run_command(args)
            stop.check()  # a signal whose raise a callback swallowed
            return code
        except KeyboardInterrupt as e:  # interrupt.Interrupted: SIGINT or SIGTERM, at any moment
            _say_interrupted(args)
            code = getattr(e, "exit_code", EXIT_INTERRUPTED)
            if argv is None:
                end_process(code)
            return code


def _parse(argv):
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # overrides may also come after options: run CONFIG --out DIR key=value
        if args.command != "run" or any(x.startswith("-") for x in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.args = list(args.args) + extra
    return args


def _run_command(args) -> int:
    """The command, with every problem said in one line: bad input (exit 2), a path that cannot
    be read or written (disk.DiskError or any other OSError: exit 1)."""
    _quiet_libraries()
    from .disk import DiskError, describe
    from .errors import ConfigError

    if getattr(args, "distributed", False):
        import jax
        jax.distributed.initialize()  # before anything else touches JAX's backends
    try:
        _check_options(args)
        return COMMANDS[args.command](args)
    except ConfigError as e:
        return _error(str(e), EXIT_BAD_INPUT)
    except DiskError as e:
        return _error(str(e), EXIT_DISK)
    except (FileNotFoundError, ValueError) as e:
        if args.command in ("report", "robustness", "merge"):
            return _error(str(e).strip().splitlines()[0], EXIT_BAD_INPUT)
        if isinstance(e, OSError):
            return _error(describe(e), EXIT_DISK)
        raise
    except OSError as e:
        return _error(describe(e), EXIT_DISK)


def _error(text: str, code: int) -> int:
    print(f"purejaxsparse: error: {text}", file=sys.stderr)
    return code


def _say_interrupted(args) -> None:
    """The one line of an interrupted command (process 0's alone): a sweep that resume can
    continue says so; a run stopped before its sweep started wrote nothing."""
    if args is not None and getattr(args, "distributed", False) and not _is_primary():
        return
    out = getattr(args, "sweep_dir", None)
    if out is not None:
        from .sweep_lock import resumable
        if resumable(out):
            print(f"interrupted: {out} is resumable: purejaxsparse resume {out}", file=sys.stderr)
            return
    command = getattr(args, "command", None)
    if command is None:
        line = "interrupted"
    elif command == "run":
        line = "interrupted before the sweep started; nothing was written"
    else:
        line = f"interrupted: {command} stopped before it finished; run it again"
    print(line, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
