"""One shard, inside the Ray task that runs it: read its rows, train every setting
(``lstm_worker.batch.forecast_batch``), combine, choose, write its parts (``run``).
``messages`` holds what the driver sends a task and what the task sends back."""
