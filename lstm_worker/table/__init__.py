"""The table model: one LSTM over windows drawn from every series of the table, predicting
each series' residual over its statistical forecast (``examples``, ``fit``), trained in a
task of its own (``task``), kept with the run (``models``) and read by every shard's task
(``forecasts``)."""
