"""Print the status API's OpenAPI document (checked in as schemas/openapi/status.json; a unit test compares):
`python -m consumers.casestore.openapi > schemas/openapi/status.json`."""
from __future__ import annotations

import json
import sys

from consumers.casestore.api import create_app
from consumers.casestore.auth import Keys
from consumers.casestore.db import database

if __name__ == "__main__":
    app = create_app(database("sqlite:///:unused:"), "cases.events", Keys({}, "unused"))
    sys.stdout.write(json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n")
