"""The run's plan, made once before any task and passed down unchanged: the final spec,
the input as the tasks will read it, what every task shares, the shards still to do and
how many passes they take.

Everything a run decides before Ray starts is decided here, from the spec, the input
and what an earlier run of the same job left in the output (a resume keeps its shards
and what it chose for the whole table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster.data.index import input_fingerprint
from cluster.data.output import finished_shards, prepare_output_dir
from cluster.inputs import InputPlan, plan_input
from cluster.manifest import Manifest, now, read_manifest
from cluster.plan import plan_shards
from cluster.resolve import worker_config
from cluster.runs import RunLinks
from cluster.sections import JobSpec
from lstm_worker.data.layout import PREPARED, TABLE_MODEL
from lstm_worker.data.place import Place
from lstm_worker.search import SearchSpec, expand
from lstm_worker.shard.messages import JobChoice, JobContext, Shard


@dataclass(frozen=True)
class TableChoice:
    """What the job chose for the whole table from every shard's backtest, and on what
    scores: recorded in the manifest, so that a resume reuses it."""

    choice: JobChoice
    blend_scores: dict[str, float]  # 'share/weight': each pair's mean backtest metric
    interval_pool: int | None = None  # the residual rows the intervals' quantiles pooled


@dataclass(frozen=True)
class RunPlan:
    spec: JobSpec  # output.path filled in, each `latest` resolved (the manifest's spec)
    run_id: str  # this run's, or the resumed run's
    template: str  # output.path as written
    links: RunLinks
    key: dict[str, str]  # spec digest and input fingerprint: what a resume must match
    out: Place
    input: InputPlan  # its spec's input.path is the table the tasks read
    job: JobContext  # what every task shares
    shards: list[Shard]
    todo: list[Shard]  # the shards no earlier run of the job finished
    global_select: bool  # search.select: global among several settings
    pools_table: bool  # a run that trains sums the table's blend scores and residuals:
    # table.share or forecast.lstm_weight auto, or intervals (their pooled quantiles)
    chosen: TableChoice | None  # the choice for the whole table, when a resumed run made it
    table_model: dict[str, Any] | None  # how a resumed run's table model trained, if it did
    started_at: str

    @property
    def choose_for_table(self) -> bool:
        """Whether the job makes a choice for the whole table (and so two passes)."""
        return self.global_select or self.pools_table

    @property
    def passes(self) -> int:
        """Tasks per shard still to run: two while a choice for the table is still to make."""
        return 2 if self.choose_for_table and self.chosen is None else 1

    @property
    def trains_table(self) -> bool:
        """Whether this run trains the table model: it trains (not forecast-only), asks
        for one, has shards to do, and no earlier run of the job stored it."""
        cfg = self.job.cfg
        stored = self.table_model is not None and self.table_model.get("trained")
        return cfg.table.enabled and not self.job.from_models and bool(self.todo) and not stored

    @property
    def series_to_compute(self) -> int:
        return sum(len(shard) for shard in self.todo)


def plan_run(
    spec: JobSpec, links: RunLinks, template: str, run_id: str, overwrite: bool
) -> RunPlan:
    """Open the output (resuming an earlier run of the same job unless ``overwrite``),
    plan the input and the shards, and say what is left to do."""
    key = {"spec_digest": spec.digest(), "input_fingerprint": input_fingerprint(spec.input)}
    previous = None if overwrite else read_manifest(spec.output.path)
    out = prepare_output_dir(spec.output.path, previous.key if previous else None, key, overwrite)
    planned = plan_input(spec, out / PREPARED, key["input_fingerprint"])
    job = _context(spec, planned, out, _run_id_of(links.previous))
    shards = plan_shards(planned.index, spec.resources.series_per_task)
    done = finished_shards(out)
    return RunPlan(
        spec=spec,
        run_id=previous.run_id if previous and previous.run_id else run_id,
        template=template,
        links=links,
        key=key,
        out=out,
        input=planned,
        job=job,
        shards=shards,
        todo=[shard for shard in shards if shard.index not in done],
        global_select=job.search.select == "global" and len(job.settings) > 1,
        pools_table=bool(job.cfg.blend_pairs()) and not spec.forecast.from_models,
        chosen=_chosen_before(previous),
        table_model=previous.table_model if previous and (out / TABLE_MODEL).exists() else None,
        started_at=now(),
    )


def _chosen_before(previous: Manifest | None) -> TableChoice | None:
    """What a resumed run had chosen for the whole table, if it had."""
    if previous is None or not previous.job_chosen or previous.lstm_weight is None:
        return None
    share = previous.table_share or 0.0
    quantiles = {int(level): tuple(q) for level, q in previous.interval_quantiles.items()}
    choice = JobChoice(previous.global_setting_index, previous.lstm_weight, share, quantiles)
    return TableChoice(choice, previous.blend_scores, previous.interval_pool)


def _run_id_of(path: str | None) -> str:
    """The run id of the run at ``path`` (its directory name if its manifest has none)."""
    if path is None:
        return ""
    manifest = read_manifest(path)
    return manifest.run_id if manifest and manifest.run_id else Place(path).name


POOLED_SERIES = 5_000  # the intervals pool the residuals of this many series at most


def _context(spec: JobSpec, plan: InputPlan, out: Place, ledger_of: str) -> JobContext:
    """What every task shares: the resolved config of every search setting, and more."""
    settings = expand(spec.search, spec.seed)
    freq = plan.sample.freq
    configs = [worker_config(spec.for_setting(s), plan.freq_seasons, freq) for s in settings]
    return JobContext(
        input=plan.spec.input,
        files=plan.index.files,
        schema=plan.index.schema,
        freq=plan.sample.freq,
        cfg=worker_config(spec, plan.freq_seasons, freq),
        settings=settings,
        configs=configs,
        search=spec.search or SearchSpec(),
        out=out,
        digest=spec.digest(),
        warm_start=spec.train.warm_start,
        from_models=spec.forecast.from_models,
        ledger_previous=spec.ledger.previous,
        ledger_of=ledger_of,
        pooled=min(1.0, POOLED_SERIES / max(1, len(plan.index))),
    )
