"""`python -m search.report RUN_DIR`: one self-contained HTML report of a run, and a PNG of each figure.

Written at the end of every run too. Opens offline: figures are embedded (PNG as data URIs, the
Pareto front as inline SVG whose points show their details on hover), and there is no script.

- the Pareto front: every trial faded, the frontier drawn, the reference points labelled;
- the winning-ticket map: layers x module types, the share of frontier points that train each
  unit, and the mean metric of finished trials with it minus without it;
- hypervolume over compute (trial-epochs) and over wall time: how the search converged;
- learning curves: the frontier's in colour, the others faded, an x where early stopping cut one;
- the paper's explanation: mean absolute pre-trained weight of each module type next to the
  metric that module type reaches alone (its reference point);
- the frontier's trials, their units and the command that exports each.
"""

from __future__ import annotations

if __name__ == "__main__":  # before anything imports transformers (see search.driver.hub)
    from search.driver.hub import start_cli

    start_cli()

import sys

from search.results.report import build_report
from search.storage.files import FRONTIER_FILE, REPORT_FIGURES, REPORT_FILE, RUN_FILE, TRIALS_FILE
from search.storage.location import RunLocation
from spaces import ArgumentParser, run_cli


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m search.report", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run folder, or its storage URI (s3://BUCKET/PREFIX/NAME)")
    parser.add_argument("--local-dir", default="results",
                        help="for a storage URI: where the run's files are downloaded and the report written")

    def body() -> int:
        args = parser.parse_args(argv)
        location = RunLocation.existing(args.run_dir, args.local_dir)
        location.pull((RUN_FILE, TRIALS_FILE, FRONTIER_FILE))
        path = build_report(location.local, location.quoted)
        uploaded = location.push((REPORT_FILE, *(p.name for p in location.local.glob(REPORT_FIGURES))))
        print(f"wrote {path}" + (f" (and {len(uploaded)} files to {location})" if uploaded else ""))
        return 0

    return run_cli(body)

if __name__ == "__main__":
    sys.exit(main())
