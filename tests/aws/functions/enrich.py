#!/usr/bin/env python3
"""A Ferrite command function for the rules tests: reads the event JSON on stdin and answers
{"event", "function", "env", "cwd", "sum"}. An event with "fail" exits 2 with a message on stderr;
an event with "record" (a path under the system's temp directory) also writes the event there."""
import json
import os
import sys
import tempfile

event = json.load(sys.stdin)
if isinstance(event, dict) and event.get("fail"):
    print("asked to fail", file=sys.stderr)
    sys.exit(2)
if isinstance(event, dict) and isinstance(event.get("record"), str):
    path = os.path.realpath(event["record"])
    if path.startswith(os.path.realpath(tempfile.gettempdir()) + os.sep):
        with open(path, "a") as f:
            f.write(json.dumps(event) + "\n")
numbers = [v for v in event.values() if isinstance(v, (int, float))] if isinstance(event, dict) else []
json.dump(
    {
        "event": event,
        "function": os.environ.get("FERRITE_FUNCTION_NAME"),
        "env": sorted(os.environ),
        "cwd": os.getcwd(),
        "sum": sum(numbers),
    },
    sys.stdout,
)
