"""`python -m search.cleanup RUN_DIR`: stop the Ray processes a killed driver of the run left on this machine.

A driver killed with SIGKILL (or a lost terminal) leaves Ray's dashboard and runtime-env agents running for
about a minute; this ends them at once (search.driver.processes). `--resume RUN` does the same before it starts.
"""

from __future__ import annotations

import sys
from pathlib import Path

from search.driver.processes import stop_leftovers
from spaces import ArgumentParser, UsageError, run_cli


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m search.cleanup", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="the run's local folder")

    def body() -> int:
        args = parser.parse_args(argv)
        if not args.run_dir.is_dir():
            raise UsageError(f"run folder not found: {args.run_dir}")
        stopped = stop_leftovers(args.run_dir)
        print(f"stopped {len(stopped)} Ray process(es) the run's driver left: {', '.join(stopped)}" if stopped
              else "no Ray process of this run is left running")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
