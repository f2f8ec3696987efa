"""A process that writes N records to a decision log: `python -m tests.decisionlog.log_writer
DIR BACKEND RECORD_JSON N ROTATE_BYTES` (the several-processes contract test)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nba.decisionlog import DecisionRecord, open_decision_log
from tests.decisionlog.helpers import numbered


def main() -> None:
    directory, backend, record_file, count, rotate = sys.argv[1:6]
    record = DecisionRecord.from_dict(json.loads(Path(record_file).read_text()))
    log = open_decision_log(directory, backend, rotate_bytes=int(rotate))
    for i in range(int(count)):
        log.write(numbered(record, i))
        if i % 50 == 0:
            log.flush()
    log.close()


if __name__ == "__main__":
    main()
