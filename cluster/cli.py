"""The ``runner`` command line: thin commands that parse, call one function, and print.

Exit codes (mapped here and nowhere else): 0 done, 1 data or runtime error,
2 bad spec or command line, 130 interrupted.
"""

from __future__ import annotations

import click

from cluster.errors import RunnerError
from cluster.spec import load_spec


class _RunnerGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RunnerError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: running tasks cancelled, nothing half-written", err=True)
            ctx.exit(130)


_set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a spec field, e.g. --set train.epochs=5 (repeatable).",
)
_spec_argument = click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))


@click.group(cls=_RunnerGroup)
@click.version_option(package_name="runner")
def main() -> None:
    """Train and forecast one LSTM per time series, fanned out on Ray."""


@main.command()
@_spec_argument
@_set_option
def validate(spec_path: str, overrides: tuple[str, ...]) -> None:
    """Check SPEC and its input table; run nothing."""
    from cluster.job import validate_job

    spec = load_spec(spec_path, overrides)
    table, season_length = validate_job(spec)
    lengths = [len(v) for v in table.values]
    click.echo(
        f"{spec_path}: ok. {len(table)} series, {sum(lengths)} rows, "
        f"{min(lengths)}-{max(lengths)} points per series, freq {table.freq}, "
        f"season {season_length}"
    )


@main.command()
@_spec_argument
@_set_option
@click.option("--address", envvar="RAY_ADDRESS", default=None,
              help="Ray cluster to join (default: RAY_ADDRESS, else an embedded local Ray).")
@click.option("--overwrite", is_flag=True, help="Replace another job's outputs in output.path.")
@click.option("--no-report", is_flag=True, help="Skip writing report.html.")
def run(spec_path: str, overrides: tuple[str, ...], address: str | None, overwrite: bool,
        no_report: bool) -> None:
    """Run SPEC here as the driver: read, fan out on Ray, write Parquet and a report."""
    from cluster.job import run_job
    from cluster.report import build_report, summarize, summary_lines

    spec = load_spec(spec_path, overrides)
    summary = run_job(spec, address=address, overwrite=overwrite)
    report = None if no_report else build_report(summary.output)
    for line in summary_lines(summarize(summary.output)):
        click.echo(line)
    click.echo(f"outputs: {summary.output}/")
    if report is not None:
        click.echo(f"report:  {report}")


@main.command()
@click.argument("output_dir", type=click.Path(file_okay=False))
@click.option("--series", "series", multiple=True, metavar="ID",
              help="Also plot this series (repeatable).")
@click.option("--random", "n_random", type=click.IntRange(min=0), default=3, show_default=True,
              help="Random ok series to plot besides the best and the worst.")
def report(output_dir: str, series: tuple[str, ...], n_random: int) -> None:
    """Write OUTPUT_DIR/report.html (and PNGs in OUTPUT_DIR/report/) for a finished run."""
    from cluster.report import build_report

    click.echo(f"report: {build_report(output_dir, series=series, n_random=n_random)}")


if __name__ == "__main__":
    main()
