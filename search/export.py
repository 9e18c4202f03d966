"""`python -m search.export RUN_DIR`: write the spec and trained tensors of one frontier point.

Picks a point of the run's frontier: `--max-params N` (the best metric within N trainable
parameters), `--min-metric X` (the fewest parameters reaching X), `--within-noise best|full` (the
winning ticket: the fewest parameters whose held-out test metric is not significantly worse than
the best scored sub-network's, or than full fine-tuning's), or by default the best metric.
Writes `spec.json` (see spaces/_spec.py for the format) and `tensors.safetensors`: the tensors
that differ from the pre-trained model. Loading the spec onto a fresh pre-trained model and these
tensors into it gives back the trial's model.
"""

from __future__ import annotations

if __name__ == "__main__":  # before anything imports transformers (see search.driver.hub)
    from search.driver.hub import saved_run_needs, start_cli

    start_cli(saved_run_needs)

import sys
from pathlib import Path

from search.ticket import adapter
from search.ticket.export import (
    MODEL_DIR,
    MODELING_FILE,
    export,
    model_load_line,
    save_adapter,
    save_model,
    tokenizer_load_line,
)
from search.ticket.load import load_ticket
from spaces import SPEC_FILE, TENSORS_FILE, ArgumentParser, Spec, run_cli

__all__ = ["MODELING_FILE", "MODEL_DIR", "export", "load_ticket", "main", "model_load_line", "save_adapter",
           "save_model", "tokenizer_load_line"]


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m search.export", description=__doc__.splitlines()[0],
                            epilog="Without --max-params, --min-metric, --within-noise or --trial: the ticket of the "
                            "front with the best validation metric.")
    parser.add_argument("run_dir", help="a finished run's folder, or its storage URI (s3://BUCKET/PREFIX/NAME)")
    add_pick_options(parser)
    parser.add_argument("--out", type=Path, help="output folder (default RUN_DIR/export/trial_ID)")
    parser.add_argument("--local-dir", default="results",
                        help="for a storage URI: where the run's files are downloaded (and the default --out)")
    parser.add_argument("--save-model", action="store_true",
                        help="also write a complete fine-tuned HF model folder (OUT/model; a mean-pooled ticket "
                        "carries its head's code and loads with trust_remote_code=True), and the PEFT adapter where "
                        "the ticket has one")
    parser.add_argument("--peft", action="store_true",
                        help="also write the ticket as a PEFT adapter (OUT/peft: LoRA for a ticket with LoRA units, "
                        "BEFT for one that trains linear layers' biases, else LN tuning of the modules it trains; the "
                        "head as modules_to_save); an error for a ticket that trains part of a module otherwise (a "
                        "LayerNorm's bias alone, as BitFit does)")

    def body() -> int:
        args = parser.parse_args(argv)
        with_adapter = True if args.peft else (None if args.save_model else False)  # None: where there is one
        out = export(args.run_dir, args.out, args.max_params, args.min_metric, args.local_dir, args.within_noise,
                     with_model=args.save_model, with_adapter=with_adapter, trial=args.trial)
        print_ticket(out, args.save_model)
        return 0

    return run_cli(body)


def add_pick_options(parser) -> None:
    """The options that choose a run's ticket (search.export, search.train): one of them, or the default."""
    pick = parser.add_mutually_exclusive_group()
    pick.add_argument("--max-params", type=int, help="best validation metric within this many trainable parameters")
    pick.add_argument("--min-metric", type=float, help="fewest trainable parameters reaching this validation metric")
    pick.add_argument("--within-noise", choices=("best", "full"),
                      help="the winning ticket: the fewest-parameter sub-network whose test metric is not "
                      "significantly worse than the best scored one (best) or than full fine-tuning (full)")
    pick.add_argument("--trial", metavar="ID",
                      help="this trial, on the front or not (its id: hover its point in report.html)")


def print_ticket(out: Path, save_model: bool) -> None:
    """What an export folder holds and how to load it, each load line as checked (search.export, search.train)."""
    spec = Spec.load(out / SPEC_FILE)
    metric, value = next(iter(spec.metrics.items()))
    test = spec.metrics.get(f"test_{metric}")
    print(f"trial {spec.source['trial']}: {spec.trainable_params:,} trainable params "
          f"({spec.trainable_params / spec.total_params:.3%}), validation {metric} {value:.4f}"
          + ("" if test is None else f", test {metric} {test:.4f} (95% interval "
             f"{spec.metrics[f'test_{metric}_interval'][0]:.4f}-{spec.metrics[f'test_{metric}_interval'][1]:.4f}, "
             f"{spec.metrics['test_rows']:,} {spec.metrics['test_split']} rows)"))
    if spec.source.get("selection"):
        print(f"  trains: {spec.source['selection']} (and the head)"
              + (f", the reference point {spec.source['preset']}" if spec.source.get("preset") else ""))
    print(f"  chosen: {spec.source['chosen']}")
    full = spec.metrics.get("not_worse_than_full")
    print("  within noise of full fine-tuning on the test rows: "
          + ("not scored" if full is None else "yes" if full else "no, significantly worse"))
    print(f"wrote {out / SPEC_FILE}\n      {out / TENSORS_FILE}")
    has_adapter = (out / adapter.ADAPTER_DIR).is_dir()
    if save_model:
        print(f"      {out / MODEL_DIR} (a complete model)")
    if has_adapter:
        print(f"      {out / adapter.ADAPTER_DIR} (a PEFT adapter)")
    elif save_model:
        print(f"note: {adapter.adapter_problem(spec, spec.taxonomy())}")
    print(f"load it: search.load_ticket({str(out)!r})  # (model, tokenizer)")
    if save_model:
        print(f"     or: {model_load_line(out / MODEL_DIR, spec.pooling)}\n"
              f"         {tokenizer_load_line(out / MODEL_DIR, spec.pooling)}")
    if has_adapter:
        print(f"     or: {adapter.adapter_load_line(out, spec)}")


if __name__ == "__main__":
    sys.exit(main())
