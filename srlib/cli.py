"""The ``srlib`` command.

    srlib evaluate --model bicubic --dataset Set5 --scale 4 --format json
    srlib upscale IN OUT --model NAME --scale S [--checkpoint F] [--tile N] [--self-ensemble]
    srlib upscale IN OUT --run STUDY/ARM [--seed S] [--profile P]
    srlib data list
    srlib data download Set5
    srlib train --model awsrn-s --scale 4 --profile quick [--resume]
    srlib models
    srlib reproduce --profile quick [--only 01,02]
    srlib study list | run NAME --profile P [--jobs N] | status NAME --profile P
    srlib study run NAME --profile P --executor slurm [--gpus-per-job 1] [--slurm-partition Q]
    srlib study export NAME --profile P [--out FILE]  |  srlib study import FILE [--force]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from .profiles import PROFILES

PROFILE_NAMES = tuple(PROFILES)


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _names(text: str) -> list[str]:
    """argparse type: a non-empty comma-separated list of names, repeats dropped (order kept)."""
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or not all(items):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of names without empty "
                                         f"entries, e.g. Set5,Set14; got {text!r}")
    return list(dict.fromkeys(items))


def _int_at_least_one(text: str, not_int: str, too_small: str) -> int:
    """``int(text)`` when it is >= 1, else ``argparse.ArgumentTypeError`` with the given messages."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(not_int.format(text=text)) from None
    if v < 1:
        raise argparse.ArgumentTypeError(too_small.format(v=v))
    return v


def _scales(text: str) -> list[int]:
    """argparse type: a non-empty comma-separated list of positive integer scales, repeats dropped."""
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or not all(items):
        raise argparse.ArgumentTypeError(f"expected comma-separated integer scales, e.g. 2,3,4; got {text!r}")
    out = [_int_at_least_one(t, "{text!r} is not an integer scale (e.g. 2,3,4)",
                             "scales must be positive integers, got {v}") for t in items]
    return list(dict.fromkeys(out))


def _positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least_one(text, "{text!r} is not an integer", "must be a positive integer, got {v}")


def _scale(text: str) -> int:
    v = _scales(text)
    if len(v) != 1:
        raise argparse.ArgumentTypeError(f"expected one integer scale, got {text!r}")
    return v[0]


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="mean PSNR/SSIM of an upscaler on benchmarks")
    p.add_argument("--model", required=True,
                   help="bicubic, bilinear, nearest, ne, sc or a registered model (see `srlib models`)")
    p.add_argument("--profile", default="quick", choices=PROFILE_NAMES,
                   help="training budget and dictionary cache of the learned classical methods (ne, sc)")
    p.add_argument("--dataset", type=_names, default="Set5",
                   help="one or more, comma-separated (Set5,Set14,B100,Urban100)")
    p.add_argument("--scale", type=_scales, default="4", help="one or more, comma-separated (2,3,4)")
    p.add_argument("--checkpoint", help="weights file for a model (loaded with weights_only=True); "
                                        "required for a model unless --random-init")
    p.add_argument("--random-init", action="store_true",
                   help="evaluate a model with its random initial weights (no checkpoint), on purpose")
    p.add_argument("--allow-modified-data", action="store_true",
                   help="evaluate a catalogued benchmark with missing or changed images (a warning, "
                        "recorded in the output's provenance) instead of stopping")
    p.add_argument("--gray-rule", choices=("rgb", "y"), default="rgb",
                   help="single-channel files: copy to RGB then Y (default), or measure the gray values")
    p.add_argument("--y", choices=("rounded", "float"), default="rounded",
                   help="Y rounded to 8 bits as MATLAB (default) or kept in float as BasicSR-style code")
    p.add_argument("--max-images", type=_positive, help="evaluate only the first N images of each set")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-fallback", action="store_true",
                   help="fail when a dataset is missing instead of using the scikit-image fallback")
    p.add_argument("--format", choices=("json", "table", "csv"), default="table")
    p.add_argument("--out", help="also write per-image and mean tables (csv, md, tex) to this stem")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate, summarize, table_title, write_table
    from .provenance import provenance

    df = evaluate(args.model, args.dataset, args.scale, checkpoint=args.checkpoint,
                  gray_rule=args.gray_rule, max_images=args.max_images, device=args.device,
                  round_y=args.y == "rounded", profile=args.profile,
                  fallback=not args.no_fallback, progress=sys.stderr.isatty(),
                  random_init=args.random_init, allow_modified=args.allow_modified_data)
    summary = summarize(df)
    source = df.attrs["data_source"]
    modified = df.attrs.get("data_modified") or {}
    if args.out:
        prov = provenance(args.profile, device=args.device, data_source=source, gray_rule=args.gray_rule,
                          y=args.y, checkpoint=args.checkpoint, random_init=args.random_init,
                          **({"data_modified": modified} if modified else {}))
        write_table(df, args.out + "_images", prov)
        write_table(summary, args.out, prov)
    if args.format == "json":
        rows = [{**{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()},
                 "data_source": source[r["dataset"]], "gray_rule": args.gray_rule, "y": args.y,
                 "checkpoint": args.checkpoint, "profile": args.profile, "random_init": args.random_init,
                 **({"data_modified": modified[r["dataset"]]} if r["dataset"] in modified else {})}
                for r in summary.to_dict("records")]
        print(json.dumps(rows[0] if len(rows) == 1 else {"results": rows}, indent=2))
    elif args.format == "csv":
        print(summary.to_csv(index=False), end="")
    else:
        title = table_title(df)
        if title:
            print(title + "\n")
        print(summary.to_markdown(index=False, floatfmt=".4f"))
        for ds, src in source.items():
            print(f"{ds}: {src}")
    return 0


def _add_upscale(sub):
    p = sub.add_parser("upscale", help="upscale an image or a folder of images")
    p.add_argument("input", help="an image file or a folder of images")
    p.add_argument("output", help="the output file (must end in .png) or folder (outputs <stem>.png)")
    p.add_argument("--model", help="a registered model or classical method (see `srlib models`); "
                                   "or give --run")
    p.add_argument("--scale", type=_scale, help="the upscaling factor (with --run: the arm's, may be left out)")
    p.add_argument("--checkpoint", help="weights file (loaded with weights_only=True); required for a "
                                        "model unless --random-init")
    p.add_argument("--run", metavar="STUDY/ARM",
                   help="a finished study arm's best.pt instead of --model/--checkpoint (see `srlib study status`)")
    p.add_argument("--seed", type=int, help="with --run: the arm's seed (default: the profile's)")
    p.add_argument("--profile", default="quick", choices=PROFILE_NAMES, help="with --run: the study's profile")
    p.add_argument("--random-init", action="store_true", help="upscale with a model's random initial weights")
    p.add_argument("--tile", type=_positive,
                   help="LR tile size in pixels, >= 1 (bounded memory); default: whole image")
    p.add_argument("--overlap", type=int, default=16, help="LR context pixels around each tile")
    p.add_argument("--self-ensemble", action="store_true", help="average over the 8 flips/rotations")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA, or CPUs with native bf16)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--skip-existing", action="store_true",
                   help="keep existing outputs and upscale only the others (resume a batch)")
    p.add_argument("--max-pixels", type=_positive,
                   help="largest input image in pixels (default ~179M, PIL's decompression-bomb limit)")
    p.set_defaults(func=cmd_upscale)


def cmd_upscale(args) -> int:
    from .inference import BatchUpscaleError, plan_upscale, prepare, upscale_path
    from .models import build_upscaler, refuse_random_weights

    if args.force and args.skip_existing:
        raise ValueError("--force overwrites existing outputs and --skip-existing keeps them; pass one")
    if args.run is None:
        if not args.model or args.scale is None:
            raise ValueError("give --model NAME --scale S (with --checkpoint F), or --run STUDY/ARM")
        refuse_random_weights(args.model, args.checkpoint, args.random_init)
    pairs, skipped = plan_upscale(args.input, args.output, args.force, args.skip_existing)  # before any work
    if not pairs:
        print(f"nothing to do: all {len(skipped)} output(s) exist (--skip-existing)")
        return 0
    if args.run is not None:
        model = _run_model(args)
    else:
        model = build_upscaler(args.model, args.scale, args.checkpoint)
    if any(True for _ in model.parameters()):
        model = prepare(model, channels_last=args.device == "cpu")
    model = model.to(args.device)
    try:
        written = upscale_path(model, args.input, args.output, args.scale, force=args.force,
                               progress=sys.stderr.isatty(), skip_existing=args.skip_existing,
                               device=args.device, tile=args.tile, overlap=args.overlap,
                               ensemble=args.self_ensemble, precision="bf16" if args.bf16 else "fp32",
                               max_pixels=args.max_pixels)
    except BatchUpscaleError as exc:
        print(f"srlib upscale: wrote {len(exc.written)} of {len(pairs)} image(s) to {args.output}; "
              f"{len(exc.failed)} failed:", file=sys.stderr)
        for path, why in exc.failed:
            print(f"  {path}: {why}", file=sys.stderr)
        return 1
    extra = f" ({len(skipped)} existing kept)" if skipped else ""
    print(f"wrote {len(written)} image(s){extra}: {written[0]}" + (" ..." if len(written) > 1 else ""))
    return 0


def _run_model(args):
    """``srlib upscale --run STUDY/ARM``: the arm's finished model (``best.pt``); sets ``args.scale``."""
    from .studies import get_study

    if args.model or args.checkpoint or args.random_init:
        raise ValueError("--run STUDY/ARM brings its own model and weights; drop --model/--checkpoint/--random-init")
    study_name, sep, arm_name = args.run.partition("/")
    if not sep or not study_name or not arm_name or "/" in arm_name:
        raise ValueError(f"--run {args.run!r}: expected STUDY/ARM, e.g. baseline/awsrn-s-x4 "
                         "(`srlib study list`, `srlib study status STUDY`)")
    study = get_study(study_name, args.profile)  # KeyError naming the registered studies
    arm = study.arm(arm_name, args.seed)  # KeyError naming the study's arms
    if args.scale is not None and args.scale != arm.scale:
        raise ValueError(f"--run {args.run}: the arm upscales x{arm.scale}, not --scale {args.scale}")
    args.scale = arm.scale
    return study.load_model(arm.name, arm.seed)  # StudyError (run the study first) when not finished


def _add_data(sub):
    p = sub.add_parser("data", help="datasets: list what is present, download what is missing")
    dsub = p.add_subparsers(dest="data_cmd", required=True)
    ls = dsub.add_parser("list", help="which datasets are present and where")
    ls.set_defaults(func=cmd_data_list)
    dl = dsub.add_parser("download", help="download datasets where the network allows")
    dl.add_argument("names", nargs="+")
    dl.add_argument("--root", help="target folder (default: SRLIB_DATA_DIR, else the cache)")
    dl.set_defaults(func=cmd_data_download)


def cmd_data_list(args) -> int:
    import pandas as pd

    from .data.catalog import data_root, dataset_status

    df = pd.DataFrame(dataset_status())
    print(df.to_markdown(index=False))
    print(f"\nSRLIB_DATA_DIR = {data_root() or '(not set)'}")
    return 0


def cmd_data_download(args) -> int:
    from .data.catalog import download_dataset

    for name in args.names:
        print(f"{name}: {download_dataset(name, args.root)}")
    return 0


def _add_train(sub):
    p = sub.add_parser("train", help="train a registered model with a profile's recipe")
    p.add_argument("--model", required=True)
    p.add_argument("--scale", type=_scale, required=True)
    p.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    p.add_argument("--force", action="store_true",
                   help="start afresh in an existing run folder, replacing its checkpoints and log")
    p.add_argument("--allow-fallback", action="store_true",
                   help="let a profile with the papers' settings (full) train on the scikit-image "
                        "fallback images when its dataset is missing")
    p.add_argument("--threads", type=_positive,
                   help="torch CPU threads (default: OMP_NUM_THREADS when set, else the profile's)")
    p.add_argument("--out", help="output folder (default results/<profile>/checkpoints/<model>_x<scale>)")
    p.add_argument("--steps", type=_positive, help="override the profile's number of iterations")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (slow first step)")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from .train import train_sr

    if args.resume and args.force:
        raise ValueError("--resume continues the run in the folder and --force replaces it; pass one")
    threads = args.threads or _env_threads()
    over = {k: v for k, v in dict(steps=args.steps, precision=args.precision, device=args.device,
                                  compile=args.compile or None, threads=threads).items() if v is not None}
    t = train_sr(args.model, args.scale, args.profile, out_dir=args.out, resume=args.resume,
                 force=args.force, allow_fallback=args.allow_fallback, **over)
    print(f"trained {args.model} x{args.scale} to step {t.step}: {t.metrics or 'no validation'}; "
          f"checkpoints in {t.out_dir / 'checkpoints'}")
    return 0


def _env_threads() -> int | None:
    """``OMP_NUM_THREADS`` as a positive int, or None when unset; a clear error when malformed."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if not env:
        return None
    try:
        n = int(env)
    except ValueError:
        raise ValueError(f"OMP_NUM_THREADS must be a positive integer, got {env!r}") from None
    if n < 1:
        raise ValueError(f"OMP_NUM_THREADS must be a positive integer, got {env!r}")
    return n


def _add_models(sub):
    p = sub.add_parser("models", help="list the upscalers srlib can build (classical methods and models)")
    p.set_defaults(func=cmd_models)


def cmd_models(args) -> int:
    from .models import describe_upscalers

    rows = [(r["name"], r["kind"], "any" if r["scales"] is None else ",".join(f"x{s}" for s in r["scales"]),
             r["description"]) for r in describe_upscalers()]
    widths = [max(len(r[i]) for r in rows + [("name", "kind", "scales")]) for i in range(3)]
    for r in [("name", "kind", "scales", "description")] + rows:
        print("  ".join(f"{c:<{w}}" for c, w in zip(r, widths)) + "  " + r[3])
    return 0


def _add_reproduce(sub):
    p = sub.add_parser("reproduce", help="run the numbered notebooks with a profile")
    p.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
    p.add_argument("--only", type=_names, help="comma-separated notebook numbers, e.g. 01,02")
    p.add_argument("--no-html", action="store_true", help="skip the HTML export")
    p.set_defaults(func=cmd_reproduce)


def cmd_reproduce(args) -> int:
    from .pipeline import reproduce

    reproduce(args.profile, only=args.only, html=not args.no_html)
    return 0


def _add_study(sub):
    p = sub.add_parser("study", help="named sets of training runs: list, run, status")
    ssub = p.add_subparsers(dest="study_cmd", required=True)
    ls = ssub.add_parser("list", help="the registered studies")
    ls.set_defaults(func=cmd_study_list)
    for name, helptext, func in (("run", "train what is missing, resume what was interrupted, evaluate",
                                  cmd_study_run),
                                 ("status", "per arm: identity, state, precision, seconds (trains nothing)",
                                  cmd_study_status)):
        q = ssub.add_parser(name, help=helptext)
        q.add_argument("name", help="a study name (see `srlib study list`)")
        q.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
        q.set_defaults(func=func)
        if name == "run":
            q.add_argument("--jobs", type=_positive,
                           help="arms trained at once, each in its own process (one GPU or one thread each); "
                                "with --executor slurm: most arms running at once (default: no cap)")
            q.add_argument("--threads", type=_positive, help="torch threads per arm (default: 1 with --jobs > 1)")
            q.add_argument("--format", choices=("table", "csv", "json"), default="table")
            _add_executor_options(q)
    ex = ssub.add_parser("export", help="pack a study's runs (checkpoints, logs, run.json, evaluations) "
                                        "into one .tar.gz for another machine")
    ex.add_argument("name", help="a study name (see `srlib study list`)")
    ex.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
    ex.add_argument("--out", help="the archive (default: results/exports/<name>-<profile>-runs.tar.gz)")
    ex.add_argument("--force", action="store_true", help="replace an existing --out")
    ex.set_defaults(func=cmd_study_export)
    im = ssub.add_parser("import", help="unpack an archive of `srlib study export` into results/<profile>/runs")
    im.add_argument("archive", help="the .tar.gz written by `srlib study export`")
    im.add_argument("--profile", choices=PROFILE_NAMES, help="the profile expected (default: the archive's)")
    im.add_argument("--force", action="store_true",
                    help="replace runs here whose files differ from the archive's (default: refuse)")
    im.set_defaults(func=cmd_study_import)


def _add_executor_options(q):
    from .studies.executors import EXECUTORS

    g = q.add_argument_group("where the arms train (see srlib.studies.executors)")
    g.add_argument("--executor", choices=EXECUTORS, default="process",
                   help="process: local processes (--jobs); slurm: one SLURM job per arm through submitit, "
                        "requeued and resumed after preemption; local: the same jobs as local processes")
    g.add_argument("--gpus-per-job", type=int, help="GPUs per arm job (default: 1 on slurm, 0 locally)")
    g.add_argument("--slurm-partition", help="SLURM partition")
    g.add_argument("--slurm-time", type=_positive, help="time limit per job in minutes (default 1440); "
                                                         "a job that reaches it is requeued and resumes")
    g.add_argument("--slurm-mem", type=float, help="memory per job in GB")
    g.add_argument("--cpus-per-job", type=_positive, help="CPU cores per job (also its torch threads)")
    g.add_argument("--executor-folder", help="submitit's job files and logs (default results/submitit/%%j)")
    g.add_argument("--executor-option", action="append", default=[], metavar="KEY=VALUE",
                   help="any submitit AutoExecutor parameter, e.g. slurm_account=lab, slurm_qos=high "
                        "(repeatable)")


def _executor_from_args(args):
    """``(executor, jobs)`` for Study.run from ``srlib study run``'s options."""
    from .studies.executors import make_executor, parse_option

    cluster = {k: v for k, v in dict(gpus_per_job=args.gpus_per_job, partition=args.slurm_partition,
                                     timeout_min=args.slurm_time, mem_gb=args.slurm_mem,
                                     cpus_per_task=args.cpus_per_job, folder=args.executor_folder).items()
               if v is not None}
    options = dict(parse_option(o) for o in args.executor_option)
    if args.executor == "process":
        if cluster or options:
            given = sorted(cluster) + sorted(options)
            raise ValueError(f"{', '.join(given)}: cluster options need --executor slurm (or local)")
        return None, args.jobs or 1
    if options:
        cluster["options"] = options
    return make_executor(args.executor, args.jobs, **cluster), args.jobs or 1


def cmd_study_list(args) -> int:
    from .studies import get_study, list_studies

    names = list_studies()
    if not names:
        print("no studies registered")
    for name in names:
        study = get_study(name, "smoke")
        print(f"{name}: {len(study.arms)} arms" + (f" - {study.description}" if study.description else ""))
    return 0


def cmd_study_run(args) -> int:
    from .studies import get_study

    study = get_study(args.name, args.profile)
    executor, jobs = _executor_from_args(args)
    table = study.run(jobs=jobs, threads=args.threads, executor=executor,
                      progress=sys.stderr.isatty() and jobs == 1 and executor is None)
    if args.format == "json":
        print(table.to_json(orient="records", indent=2))
    elif args.format == "csv":
        print(table.to_csv(index=False), end="")
    else:
        print(table.drop(columns=["run_dir"]).to_markdown(index=False, floatfmt=".4f"))
    return 0


def cmd_study_status(args) -> int:
    from .studies import get_study

    print(get_study(args.name, args.profile).status().drop(columns=["run_dir"]).to_markdown(index=False))
    return 0


def cmd_study_export(args) -> int:
    from .studies import get_study
    from .studies.transfer import export_study, read_manifest

    out = export_study(get_study(args.name, args.profile), args.out, force=args.force)
    manifest = read_manifest(out)
    size = out.stat().st_size
    size = f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.0f} KiB"
    print(f"wrote {out} ({size}): {len(manifest['runs'])} run(s), {len(manifest['files'])} file(s) of "
          f"study {args.name!r} ({args.profile}); copy it to the other machine and run there: "
          f"srlib study import {out.name}")
    return 0


def cmd_study_import(args) -> int:
    from .studies.transfer import import_runs

    rows = import_runs(args.archive, force=args.force, profile=args.profile)
    print(rows.drop(columns=["note"]).to_markdown(index=False))
    for r in rows.to_dict("records"):
        if r["used_here"] is not True and r["note"]:
            print(f"{r['study']}/{r['arm']} (seed {r['seed']}): {r['note']}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srlib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_evaluate, _add_train, _add_upscale, _add_data, _add_models, _add_reproduce,
                _add_study):
        add(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *a, **k: f"srlib: {cat.__name__}: {msg}\n"
    try:
        return args.func(args)
    except (KeyError, ValueError, FileNotFoundError, OSError, RuntimeError, ImportError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"srlib {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
