"""The server's worker processes, and the work they do: nothing here runs a model in the server's own process.

`pool` holds the warm trace workers (`WorkerPool`) and the one process per timed profile (`ProfileProcess`);
`jobs` queues profiles per device (`ProfileManager`); `child` is the child side of both (never outlive the server,
bound every task in time) and `tasks` the work a trace worker runs (everything that builds a model);
`capture_child` is the activation-capture child process (the capture service that feeds it is `app.workers.captures`).

Nothing is imported here: a spawned child imports only the module it runs, so import from the modules.
"""
