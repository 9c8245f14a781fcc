"""What runs inside a Ray worker for one shard: read, train every setting, choose, write.

Plain Python that tests call in-process; it loads torch (through ``lstm_worker``),
which the driver never does.
"""
