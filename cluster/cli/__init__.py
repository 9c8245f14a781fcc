"""The ``runner`` command line: thin commands that parse, call one function, and print.

Exit codes (mapped here and nowhere else): 0 done, 1 data or runtime error,
2 bad spec or command line, 130 interrupted.
"""

from __future__ import annotations

import click

from cluster.cli import jobs, local
from lstm_worker.errors import RunnerError


class _RunnerGroup(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except RunnerError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo(
                "interrupted: nothing half-written; tasks in flight end when this driver "
                "leaves Ray, and a rerun resumes from the finished shards",
                err=True,
            )
            ctx.exit(130)


@click.group(cls=_RunnerGroup)
@click.version_option(package_name="runner")
def main() -> None:
    """Train and forecast one LSTM per time series, fanned out on Ray."""


for command in (
    local.validate,
    local.run,
    local.forecast,
    local.prepare,
    local.report,
    jobs.submit,
    jobs.status,
    jobs.logs,
    jobs.stop,
):
    main.add_command(command)
