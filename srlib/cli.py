"""The ``srlib`` command.

    srlib evaluate --model bicubic --dataset Set5 --scale 4 --format json
    srlib upscale IN OUT --model NAME --scale S [--checkpoint F] [--tile N] [--self-ensemble]
    srlib data list
    srlib data download Set5
    srlib train --model awsrn-s --scale 4 --profile quick [--resume]
    srlib models
    srlib reproduce --profile quick [--only 01,02]
    srlib study list | run NAME --profile P [--jobs N] | status NAME --profile P
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="mean PSNR/SSIM of an upscaler on benchmarks")
    p.add_argument("--model", required=True,
                   help="bicubic, bilinear, nearest, ne, sc or a registered model (see `srlib models`)")
    p.add_argument("--profile", default="quick", choices=("smoke", "quick", "full"),
                   help="training budget and dictionary cache of the learned classical methods (ne, sc)")
    p.add_argument("--dataset", default="Set5", help="one or more, comma-separated (Set5,Set14,B100,Urban100)")
    p.add_argument("--scale", default="4", help="one or more, comma-separated (2,3,4)")
    p.add_argument("--checkpoint", help="weights file for a model (loaded with weights_only=True)")
    p.add_argument("--gray-rule", choices=("rgb", "y"), default="rgb",
                   help="single-channel files: copy to RGB then Y (default), or measure the gray values")
    p.add_argument("--y", choices=("rounded", "float"), default="rounded",
                   help="Y rounded to 8 bits as MATLAB (default) or kept in float as BasicSR-style code")
    p.add_argument("--max-images", type=int, help="evaluate only the first N images of each set")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-fallback", action="store_true",
                   help="fail when a dataset is missing instead of using the scikit-image fallback")
    p.add_argument("--format", choices=("json", "table", "csv"), default="table")
    p.add_argument("--out", help="also write per-image and mean tables (csv, md, tex) to this stem")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate, summarize, write_table
    from .provenance import provenance

    scales = [int(s) for s in _csv(args.scale)]
    df = evaluate(args.model, _csv(args.dataset), scales, checkpoint=args.checkpoint,
                  gray_rule=args.gray_rule, max_images=args.max_images, device=args.device,
                  round_y=args.y == "rounded", profile=args.profile,
                  fallback=not args.no_fallback, progress=sys.stderr.isatty())
    summary = summarize(df)
    source = df.attrs["data_source"]
    if args.out:
        prov = provenance(args.profile, device=args.device, data_source=source, gray_rule=args.gray_rule,
                          y=args.y, checkpoint=args.checkpoint)
        write_table(df, args.out + "_images", prov)
        write_table(summary, args.out, prov)
    if args.format == "json":
        rows = [{**{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()},
                 "data_source": source[r["dataset"]], "gray_rule": args.gray_rule, "y": args.y,
                 "checkpoint": args.checkpoint, "profile": args.profile} for r in summary.to_dict("records")]
        print(json.dumps(rows[0] if len(rows) == 1 else {"results": rows}, indent=2))
    elif args.format == "csv":
        print(summary.to_csv(index=False), end="")
    else:
        print(summary.to_markdown(index=False, floatfmt=".4f"))
        for ds, src in source.items():
            print(f"{ds}: {src}")
    return 0


def _add_upscale(sub):
    p = sub.add_parser("upscale", help="upscale an image or a folder of images")
    p.add_argument("input", help="an image file or a folder of images")
    p.add_argument("output", help="the output file (PNG) or folder")
    p.add_argument("--model", required=True)
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--checkpoint", help="weights file (loaded with weights_only=True)")
    p.add_argument("--tile", type=int, help="LR tile size in pixels (bounded memory); default: whole image")
    p.add_argument("--overlap", type=int, default=16, help="LR context pixels around each tile")
    p.add_argument("--self-ensemble", action="store_true", help="average over the 8 flips/rotations")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA, or CPUs with native bf16)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=cmd_upscale)


def cmd_upscale(args) -> int:
    from .inference import prepare, upscale_path
    from .models import build_upscaler

    model = build_upscaler(args.model, args.scale, args.checkpoint)
    if any(True for _ in model.parameters()):
        model = prepare(model, channels_last=args.device == "cpu")
    model = model.to(args.device)
    written = upscale_path(model, args.input, args.output, args.scale, force=args.force,
                           progress=sys.stderr.isatty(), device=args.device, tile=args.tile,
                           overlap=args.overlap, ensemble=args.self_ensemble,
                           precision="bf16" if args.bf16 else "fp32")
    print(f"wrote {len(written)} image(s): {written[0]}" + (" ..." if len(written) > 1 else ""))
    return 0


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
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--profile", default="quick", choices=("smoke", "quick", "full"))
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    p.add_argument("--out", help="output folder (default results/<profile>/checkpoints/<model>_x<scale>)")
    p.add_argument("--steps", type=int, help="override the profile's number of iterations")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (slow first step)")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from .train import train_sr

    over = {k: v for k, v in dict(steps=args.steps, precision=args.precision, device=args.device,
                                  compile=args.compile or None).items() if v is not None}
    t = train_sr(args.model, args.scale, args.profile, out_dir=args.out, resume=args.resume, **over)
    print(f"trained {args.model} x{args.scale} to step {t.step}: {t.metrics or 'no validation'}; "
          f"checkpoints in {t.out_dir / 'checkpoints'}")
    return 0


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
    p.add_argument("--profile", default="quick", choices=("smoke", "quick", "full"))
    p.add_argument("--only", help="comma-separated notebook numbers, e.g. 01,02")
    p.add_argument("--no-html", action="store_true", help="skip the HTML export")
    p.set_defaults(func=cmd_reproduce)


def cmd_reproduce(args) -> int:
    from .pipeline import reproduce

    reproduce(args.profile, only=_csv(args.only) if args.only else None, html=not args.no_html)
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
        q.add_argument("--profile", default="quick", choices=("smoke", "quick", "full"))
        q.set_defaults(func=func)
        if name == "run":
            q.add_argument("--jobs", type=int, default=1,
                           help="arms trained at once, each in its own process (one GPU or one thread each)")
            q.add_argument("--threads", type=int, help="torch threads per arm (default: 1 with --jobs > 1)")
            q.add_argument("--format", choices=("table", "csv", "json"), default="table")


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

    table = get_study(args.name, args.profile).run(jobs=args.jobs, threads=args.threads,
                                                   progress=sys.stderr.isatty() and args.jobs == 1)
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
    except (KeyError, ValueError, FileNotFoundError, OSError, RuntimeError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"srlib {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
