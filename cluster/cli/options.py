"""The options and arguments several commands share."""

from __future__ import annotations

import click

from cluster.submit import DEFAULT_ADDRESS

set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a spec field, e.g. --set train.epochs=5 (repeatable).",
)
spec_argument = click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
overwrite_option = click.option(
    "--overwrite", is_flag=True, help="Replace another job's outputs in output.path."
)
no_report_option = click.option("--no-report", is_flag=True, help="Skip writing report.html.")


job_address = click.option(
    "--address",
    envvar=["RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"],
    default=DEFAULT_ADDRESS,
    show_default=True,
    help="The cluster's Job API (env: RAY_API_SERVER_ADDRESS, RAY_ADDRESS).",
)
job_id_argument = click.argument("job_id")
