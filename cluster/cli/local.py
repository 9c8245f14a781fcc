"""The commands that run on this machine: validate, run, forecast, prepare, report."""

from __future__ import annotations

import click

from cluster.cli.options import no_report_option, overwrite_option, set_option, spec_argument
from cluster.resolve import worker_config
from cluster.sections import JobSpec
from cluster.spec import load_spec
from lstm_worker.data.place import Place
from lstm_worker.errors import OutputError


@click.command()
@spec_argument
@set_option
def validate(spec_path: str, overrides: tuple[str, ...]) -> None:
    """Check SPEC and its input table; run nothing."""
    from cluster.inputs import validate_job

    spec = load_spec(spec_path, overrides)
    plan, report = validate_job(spec)
    click.echo(
        f"{spec_path}: ok. {report['series']} series, {report['rows']} rows, "
        f"{report['min_points']}-{report['max_points']} points per series, freq {plan.sample.freq}"
    )
    resolved = plan.resolved
    click.echo(
        f"resolved: season_length {resolved.season_length}, seasons "
        f"{list(resolved.seasons)}, model.lookback {resolved.lookback}"
    )
    for key, why in resolved.why.items():
        click.echo(f"  {key}: {why}")
    cfg = worker_config(spec, plan.freq_seasons, plan.sample.freq)
    if cfg.covariates:
        click.echo(
            f"known inputs: calendar {list(cfg.calendar)}, features {list(cfg.features)} "
            f"({len(cfg.covariates)} channels); train.shared_start {cfg.train.shared_start}"
        )
    _echo_night(spec)
    if report["too_short"]:
        click.echo(
            f"{report['too_short']} series have fewer than the "
            f"{report['trained_from']} points a series is trained from: "
            f"forecast.short_series ({spec.forecast.short_series}) applies to them"
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


def _echo_night(spec: JobSpec) -> None:
    """Where tonight's outputs go and which runs it builds on, when the spec leaves those
    to the date or to ``latest``."""
    from cluster.runs import new_run_id, output_path, resolve_links

    night = output_path(spec.output.path, new_run_id())
    with_night = spec.model_copy(update={"output": spec.output.model_copy(update={"path": night})})
    _, links = resolve_links(with_night, spec.output.path, Place(night))
    if night != spec.output.path:
        click.echo(f"output.path: {night} (from {spec.output.path})")
    for field, how in links.notes.items():
        click.echo(f"{field}: {how}")


_address_option = click.option(
    "--address",
    envvar="RAY_ADDRESS",
    default=None,
    help="Ray cluster to join (default: RAY_ADDRESS, else an embedded local Ray).",
)


@click.command()
@spec_argument
@set_option
@_address_option
@overwrite_option
@no_report_option
def run(
    spec_path: str,
    overrides: tuple[str, ...],
    address: str | None,
    overwrite: bool,
    no_report: bool,
) -> None:
    """Run SPEC here as the driver: read, fan out on Ray, write Parquet and a report."""
    _run(load_spec(spec_path, overrides), address, overwrite, no_report)


@click.command()
@spec_argument
@click.option(
    "--models",
    required=True,
    type=click.Path(file_okay=False),
    help="The output.path of the run whose stored models forecast, or latest.",
)
@set_option
@_address_option
@overwrite_option
@no_report_option
def forecast(
    spec_path: str,
    models: str,
    overrides: tuple[str, ...],
    address: str | None,
    overwrite: bool,
    no_report: bool,
) -> None:
    """Forecast SPEC's series from stored models and the newest data: no training."""
    _run(
        load_spec(spec_path, [*overrides, f"forecast.from_models={models}"]),
        address,
        overwrite,
        no_report,
    )


def _run(spec: JobSpec, address: str | None, overwrite: bool, no_report: bool) -> None:
    from cluster.api import execute
    from cluster.progress import JobProgress
    from cluster.report.lines import summary_lines

    done = execute(spec, address, overwrite, report=not no_report, progress=JobProgress)
    for line in summary_lines(done.summary):
        click.echo(line)
    if done.tracking:
        click.echo(done.tracking)
    click.echo(f"outputs: {done.output}/")
    if done.report is not None:
        click.echo(f"report:  {done.report}")
    if done.error is not None:  # the job finished: it was shown, now it fails
        raise done.error


@click.command()
@spec_argument
@click.argument("dest", type=click.Path(file_okay=False))
@set_option
def prepare(spec_path: str, dest: str, overrides: tuple[str, ...]) -> None:
    """Write SPEC's input to DEST sorted by series id, in files of whole series.

    `runner run` does this by itself (into the output directory) when the rows of a
    series are not consecutive in one file; do it once here when many jobs read it.
    """

    from cluster.data.index import input_fingerprint
    from cluster.data.prepare import prepare_input, prepared_from

    spec = load_spec(spec_path, overrides)
    target = Place(dest)
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


@click.command()
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
