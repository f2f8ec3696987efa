"""Serving decisions: the application service and the transports, workers and reloads around it.

A transport face parses its wire format into the nba.v1 proto messages and makes one call
into the service; everything a transport shares lives in the service, not in the faces.

    module        what it is for
    service.py    DecisionService: the four calls on proto messages, raising nba errors;
                  knows no transport (auth, limits, deadlines and metrics plug in here)
    errors.py     the one table from nba error to gRPC status, HTTP status, Connect code
                  and client message, for every transport
    grpc_face.py  the gRPC server: each RPC one service call; health (incl. `nba.rules`)
                  and reflection
    reload.py     RuleSetHolder: the serving rule set, leased per call, reloaded live and
                  swapped whole; listeners hear every load
    processes.py  `nba serve`: one process or forked workers sharing a port, signals,
                  restarts, the store sweeper
"""

# `--store none`: serve stateless, every request carrying the history it needs. Defined
# here so the CLI can name it in its help without importing processes.py (multiprocessing
# costs every nba command ~20 ms at import).
NO_STORE = "none"
