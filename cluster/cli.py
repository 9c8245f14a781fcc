"""The ``runner`` command line: thin commands that parse, call one function, and print.

Exit codes (mapped here and nowhere else): 0 done, 1 data or runtime error,
2 bad spec or command line, 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path

import click

from cluster.errors import FailureLimitError, OutputError, RunnerError
from cluster.spec import load_spec
from cluster.submit import DEFAULT_ADDRESS


class _RunnerGroup(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except RunnerError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: running tasks cancelled, nothing half-written", err=True)
            ctx.exit(130)


_set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a spec field, e.g. --set train.epochs=5 (repeatable).",
)
_spec_argument = click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
_overwrite_option = click.option(
    "--overwrite", is_flag=True, help="Replace another job's outputs in output.path."
)
_no_report_option = click.option("--no-report", is_flag=True, help="Skip writing report.html.")


@click.group(cls=_RunnerGroup)
@click.version_option(package_name="runner")
def main() -> None:
    """Train and forecast one LSTM per time series, fanned out on Ray."""


@main.command()
@_spec_argument
@_set_option
def validate(spec_path: str, overrides: tuple[str, ...]) -> None:
    """Check SPEC and its input table; run nothing."""
    from cluster.inputs import validate_job

    spec = load_spec(spec_path, overrides)
    plan, report = validate_job(spec)
    click.echo(
        f"{spec_path}: ok. {report['series']} series, {report['rows']} rows, "
        f"{report['min_points']}-{report['max_points']} points per series, freq {plan.sample.freq}"
    )
    resolved = spec.resolved(plan.calendar)
    click.echo(
        f"resolved: season_length {resolved['season_length']}, seasons "
        f"{list(resolved['seasons'])}, model.lookback {resolved['lookback']}"
    )
    for key, why in resolved["why"].items():
        click.echo(f"  {key}: {why}")
    if report["too_short"]:
        click.echo(
            f"{report['too_short']} series have fewer than "
            f"{spec.forecast.min_series_points()} points: forecast.short_series "
            f"({spec.forecast.short_series}) applies to them"
        )
    if plan.spec.input.path != spec.input.path:
        click.echo(
            f"the rows of a series are not consecutive in one file: `runner run` will "
            f"first write a copy sorted by {spec.input.id_col!r} (see `runner prepare`)"
        )
    if report["skipped"]:
        series_id, note = report["first_skipped"]
        click.echo(
            f"{report['skipped']} series will be skipped as read; the first, {series_id!r}: {note}"
        )
    cleaning = report["cleaning"]
    if cleaning["series_filled"] or cleaning["rows_merged"]:
        click.echo(
            f"{cleaning['values_filled']} NaN/inf values and {cleaning['steps_inserted']} "
            f"missing time steps will be filled in {cleaning['series_filled']} series "
            f"(input.missing: {spec.input.missing}); {cleaning['rows_merged']} duplicate "
            f"rows merged (input.duplicates: {spec.input.duplicates})"
        )


@main.command()
@_spec_argument
@_set_option
@click.option(
    "--address",
    envvar="RAY_ADDRESS",
    default=None,
    help="Ray cluster to join (default: RAY_ADDRESS, else an embedded local Ray).",
)
@_overwrite_option
@_no_report_option
def run(
    spec_path: str,
    overrides: tuple[str, ...],
    address: str | None,
    overwrite: bool,
    no_report: bool,
) -> None:
    """Run SPEC here as the driver: read, fan out on Ray, write Parquet and a report."""
    from cluster.job import run_job
    from cluster.progress import JobProgress
    from cluster.report.page import report_and_summary
    from cluster.report.summary import summarize, summary_lines

    def show(output: Path) -> None:
        report, summary = (None, summarize(output)) if no_report else report_and_summary(output)
        for line in summary_lines(summary):
            click.echo(line)
        click.echo(f"outputs: {output}/")
        if report is not None:
            click.echo(f"report:  {report}")

    spec = load_spec(spec_path, overrides)
    try:
        summary = run_job(spec, address=address, overwrite=overwrite, progress=JobProgress)
    except FailureLimitError as error:  # the job finished: show how it went, then fail
        show(error.summary.output)
        raise
    show(summary.output)


@main.command()
@_spec_argument
@click.argument("dest", type=click.Path(file_okay=False))
@_set_option
def prepare(spec_path: str, dest: str, overrides: tuple[str, ...]) -> None:
    """Write SPEC's input to DEST sorted by series id, in files of whole series.

    `runner run` does this by itself (into the output directory) when the rows of a
    series are not consecutive in one file; do it once here when many jobs read it.
    """

    from cluster.data.prepare import prepare_input, prepared_from
    from cluster.data.source import input_fingerprint

    spec = load_spec(spec_path, overrides)
    target = Path(dest)
    if target.exists() and any(target.iterdir()) and prepared_from(target) is None:
        raise OutputError(
            f"{dest}: exists and is not a copy `runner prepare` wrote; "
            "choose an empty or new directory"
        )
    report = prepare_input(spec.input, target, input_fingerprint(spec.input))
    click.echo(
        f"{report['series']} series, {report['rows']} rows -> {report['files']} files in "
        f"{dest} ({report['seconds']:.1f} s); point input.path at it"
    )


@main.command()
@click.argument("output_dir", type=click.Path(file_okay=False))
@click.option(
    "--series", "series", multiple=True, metavar="ID", help="Also plot this series (repeatable)."
)
@click.option(
    "--random",
    "n_random",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Random ok series to plot besides the best and the worst.",
)
def report(output_dir: str, series: tuple[str, ...], n_random: int) -> None:
    """Write OUTPUT_DIR/report.html (and PNGs in OUTPUT_DIR/report/) for a finished run."""
    from cluster.report.page import build_report

    click.echo(f"report: {build_report(output_dir, series=series, n_random=n_random)}")


_job_address = click.option(
    "--address",
    envvar=["RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"],
    default=DEFAULT_ADDRESS,
    show_default=True,
    help="The cluster's Job API (env: RAY_API_SERVER_ADDRESS, RAY_ADDRESS).",
)
_job_id = click.argument("job_id")


@main.command()
@_spec_argument
@_set_option
@_job_address
@click.option("--no-wait", is_flag=True, help="Print the job id and return at once.")
@click.option(
    "--python",
    metavar="PATH",
    default=None,
    help="The interpreter on the head that has Ray and this project (default: the first "
    "of python3, python on the head's PATH that does).",
)
@_overwrite_option
@_no_report_option
@click.pass_context
def submit(
    ctx: click.Context,
    spec_path: str,
    overrides: tuple[str, ...],
    address: str,
    no_wait: bool,
    python: str | None,
    overwrite: bool,
    no_report: bool,
) -> None:
    """Run SPEC on the cluster at ADDRESS as a Ray job; follow its logs, exit with its outcome.

    Uploads the current directory (SPEC and relative input paths must be inside it).
    """
    from cluster.submit import submit_job

    submitted = submit_job(
        spec_path, overrides, address, overwrite=overwrite, report=not no_report, python=python
    )
    for note in submitted.notes:
        click.echo(f"note: {note}", err=True)
    job_id = submitted.job_id
    if no_wait:
        click.echo(job_id)
        click.echo(f"submitted; `runner logs {job_id} --follow` to watch it", err=True)
        return
    click.echo(f"submitted {job_id} to {address}; Ctrl-C detaches, the job goes on", err=True)
    ctx.exit(_follow(job_id, address))


_JOB_EXIT = {"SUCCEEDED": 0, "STOPPED": 130}  # FAILED: the driver's own code (1 or 2), else 1


def _follow(job_id: str, address: str) -> int:
    """Print a submitted job's logs until it ends; the exit code runner ends with.

    Ctrl-C detaches (exit 130) and leaves the job running: ``runner stop`` ends it.
    """
    from cluster.submit import follow_job

    try:
        state = follow_job(job_id, address, on_logs=lambda lines: click.echo(lines, nl=False))
    except KeyboardInterrupt:
        click.echo(
            f"detached: job {job_id} keeps running; `runner stop {job_id}` ends it", err=True
        )
        return 130
    click.echo(f"job {job_id} {state.status}: {state.message}", err=True)
    if state.status in _JOB_EXIT:
        return _JOB_EXIT[state.status]
    return state.exit_code if state.exit_code in (1, 2) else 1


@main.command()
@_job_id
@_job_address
def status(job_id: str, address: str) -> None:
    """Print the status of a submitted job: PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED."""
    from cluster.submit import job_status

    state = job_status(job_id, address)
    click.echo(f"{job_id}: {state.status}" + (f" ({state.message})" if state.message else ""))


@main.command()
@_job_id
@_job_address
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
@click.pass_context
def logs(ctx: click.Context, job_id: str, address: str, follow: bool) -> None:
    """Print a submitted job's driver logs."""
    from cluster.submit import job_logs

    if follow:
        ctx.exit(_follow(job_id, address))
    click.echo(job_logs(job_id, address), nl=False)


@main.command()
@_job_id
@_job_address
def stop(job_id: str, address: str) -> None:
    """Stop a submitted job (its running tasks are cancelled) and wait for it to end."""
    from cluster.submit import stop_job

    state = stop_job(job_id, address)
    click.echo(f"{job_id}: {state.status}")


if __name__ == "__main__":
    main()
