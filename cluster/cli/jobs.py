"""The commands that talk to a running cluster's Job API: submit, status, logs, stop."""

from __future__ import annotations

import click

from cluster.cli.options import (
    job_address,
    job_id_argument,
    no_report_option,
    overwrite_option,
    set_option,
    spec_argument,
)


@click.command()
@spec_argument
@set_option
@job_address
@click.option("--no-wait", is_flag=True, help="Print the job id and return at once.")
@click.option(
    "--python",
    metavar="PATH",
    default=None,
    help="The interpreter on the head that has Ray and this project (default: the first "
    "of python3, python on the head's PATH that does).",
)
@overwrite_option
@no_report_option
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


@click.command()
@job_id_argument
@job_address
def status(job_id: str, address: str) -> None:
    """Print the status of a submitted job: PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED."""
    from cluster.submit import job_status

    state = job_status(job_id, address)
    click.echo(f"{job_id}: {state.status}" + (f" ({state.message})" if state.message else ""))


@click.command()
@job_id_argument
@job_address
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
@click.pass_context
def logs(ctx: click.Context, job_id: str, address: str, follow: bool) -> None:
    """Print a submitted job's driver logs."""
    from cluster.submit import job_logs

    if follow:
        ctx.exit(_follow(job_id, address))
    click.echo(job_logs(job_id, address), nl=False)


@click.command()
@job_id_argument
@job_address
def stop(job_id: str, address: str) -> None:
    """Stop a submitted job (its running tasks are cancelled) and wait for it to end."""
    from cluster.submit import stop_job

    state = stop_job(job_id, address)
    click.echo(f"{job_id}: {state.status}")
