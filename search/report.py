"""`python -m search.report RUN_DIR`: one self-contained HTML report of a run, and a PNG of each figure.

Written at the end of every run too; what it holds: search.results.html_report.
"""

from __future__ import annotations

if __name__ == "__main__":  # before anything imports transformers (see search.driver.hub)
    from search.driver.hub import saved_run_needs, start_cli

    start_cli(saved_run_needs)

import sys

from search.results.html_report import build_report
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
