"""The driver's side of the data: the input's index (``index``), its re-partition when its
series are not runs of rows (``prepare``), and the output directory's checks and
compaction (``output``). What a task reads and writes is ``lstm_worker.data``."""
